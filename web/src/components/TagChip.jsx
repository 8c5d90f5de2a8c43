// A tag's name in its color, with an optional button that removes it from a story.
export function TagChip({ tag, onRemove }) {
  return (
    <span className="tag-chip">
      <span className="swatch" style={{ backgroundColor: tag.color }} aria-hidden="true" />
      {tag.name}
      {onRemove ? (
        <button type="button" className="chip-remove" aria-label={`Remove tag ${tag.name}`} onClick={onRemove}>
          ×
        </button>
      ) : null}
    </span>
  );
}
