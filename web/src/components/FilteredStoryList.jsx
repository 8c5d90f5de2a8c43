// The stories of one tag, newest first, a page at a time.
import { graphql, useLazyLoadQuery, usePaginationFragment } from "react-relay/hooks";
import { PAGE_SIZE } from "./StoryList.jsx";
import { StoryListView } from "./StoryListView.jsx";

const query = graphql`
  query FilteredStoryListQuery($tagName: String!) {
    ...FilteredStoryList_query @arguments(tagName: $tagName)
  }
`;

export function FilteredStoryList({ tagName, tags, refreshKey, onClear }) {
  const root = useLazyLoadQuery(query, { tagName }, { fetchPolicy: "store-and-network", fetchKey: refreshKey });
  const { data, loadNext, hasNext, isLoadingNext } = usePaginationFragment(
    graphql`
      fragment FilteredStoryList_query on Query
      @refetchable(queryName: "FilteredStoryListPaginationQuery")
      @argumentDefinitions(
        tagName: { type: "String!" }
        count: { type: "Int", defaultValue: 10 }
        cursor: { type: "String" }
      ) {
        me {
          library {
            storiesByTag(tagName: $tagName, first: $count, after: $cursor)
              @connection(key: "FilteredStoryList_storiesByTag", filters: ["tagName"]) {
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
    root,
  );
  const stories = data.me?.library?.storiesByTag;
  if (!stories) return null;
  const n = stories.totalCount;
  return (
    <section aria-labelledby="filtered-heading">
      <h2 id="filtered-heading">Tagged “{tagName}”</h2>
      <p className="total-filtered">
        {n === 1 ? "1 tagged story" : `${n} tagged stories`}{" "}
        <button type="button" onClick={onClear}>
          Show all stories
        </button>
      </p>
      <StoryListView
        edges={stories.edges}
        tags={tags}
        hasNext={hasNext}
        isLoadingNext={isLoadingNext}
        onLoadMore={() => loadNext(PAGE_SIZE)}
        empty="No story has this tag."
      />
    </section>
  );
}
