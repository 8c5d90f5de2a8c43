// All of the library's stories, newest first, a page at a time, and their total.
import { graphql, usePaginationFragment } from "react-relay/hooks";
import { StoryListView } from "./StoryListView.jsx";

export const PAGE_SIZE = 10;

/** `showList` false: only the total (a tag filter shows its own list instead). */
export function StoryList({ query, tags, showList }) {
  const { data, loadNext, hasNext, isLoadingNext } = usePaginationFragment(
    graphql`
      fragment StoryList_query on Query
      @refetchable(queryName: "StoryListPaginationQuery")
      @argumentDefinitions(count: { type: "Int", defaultValue: 10 }, cursor: { type: "String" }) {
        me {
          library {
            stories(first: $count, after: $cursor) @connection(key: "StoryList_stories") {
              totalCount
              edges {
                node {
                  id
                  ...StoryItem_story
                }
              }
            }
          }
        }
      }
    `,
    query,
  );
  const stories = data.me?.library?.stories;
  if (!stories) return null;
  const total = stories.totalCount;
  return (
    <section aria-labelledby="stories-heading">
      <h2 id="stories-heading">Stories</h2>
      <p className="total">{total === 1 ? "1 story" : `${total} stories`}</p>
      {showList ? (
        <StoryListView
          edges={stories.edges}
          tags={tags}
          hasNext={hasNext}
          isLoadingNext={isLoadingNext}
          onLoadMore={() => loadNext(PAGE_SIZE)}
          empty="No stories yet: add the first one."
        />
      ) : null}
    </section>
  );
}
