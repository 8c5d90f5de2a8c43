// The library's tags as checkboxes: which ones a story (being added or edited) carries.
export function TagPicker({ tags, selected, onChange }) {
  if (tags.length === 0) return null;
  const toggle = (id) => onChange(selected.includes(id) ? selected.filter((x) => x !== id) : [...selected, id]);
  return (
    <fieldset>
      <legend>Tags</legend>
      {tags.map((t) => (
        <label key={t.id} className="check">
          <input type="checkbox" checked={selected.includes(t.id)} onChange={() => toggle(t.id)} />
          {t.name}
        </label>
      ))}
    </fieldset>
  );
}
