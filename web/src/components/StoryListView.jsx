// One list of stories (all of them, or those of one tag) with its "Load more" button.
import { StoryItem } from "./StoryItem.jsx";

export function StoryListView({ edges, tags, hasNext, isLoadingNext, onLoadMore, empty }) {
  const stories = edges.filter((edge) => edge?.node);
  return (
    <>
      {stories.length === 0 ? <p className="empty">{empty}</p> : null}
      <ul aria-label="Stories" className="stories">
        {stories.map(({ node }) => (
          <StoryItem key={node.id} story={node} tags={tags} />
        ))}
      </ul>
      {hasNext ? (
        <button type="button" onClick={onLoadMore} disabled={isLoadingNext}>
          {isLoadingNext ? "Loading…" : "Load more"}
        </button>
      ) : null}
    </>
  );
}
