// The signed-in page: the status line, the add-story form, the tags and the stories,
// kept live by the tab's one library channel subscription.
import { Suspense, useEffect, useRef } from "react";
import { graphql, useLazyLoadQuery, useMutation } from "react-relay/hooks";
import { AddStoryForm } from "../components/AddStoryForm.jsx";
import { ConnectionStatus } from "../components/ConnectionStatus.jsx";
import { FilteredStoryList } from "../components/FilteredStoryList.jsx";
import { LibraryContext } from "../components/LibraryContext.js";
import { StoryList } from "../components/StoryList.jsx";
import { TagList } from "../components/TagList.jsx";
import { useLibraryChannel } from "../live/LibraryChannel.js";

const query = graphql`
  query LibraryPageQuery {
    me {
      id
      email
      name
      library {
        id
        tags { id name color }
      }
    }
    ...StoryList_query
  }
`;

const signOutMutation = graphql`
  mutation LibraryPageSignOutMutation {
    signOut
  }
`;

/**
 * `refreshKey` changes when the tab must catch up by refetching (its socket came back with
 * nothing to resume from, or the server reset its subscription): the page is fetched again
 * and the store takes the answer. `onResync` asks for that.
 */
export function LibraryPage({ refreshKey, onResync, tagFilter, onTagFilter, onSignedOut }) {
  const data = useLazyLoadQuery(query, {}, { fetchPolicy: "store-and-network", fetchKey: refreshKey });
  const [commitSignOut, signingOut] = useMutation(signOutMutation);
  const me = data.me;
  const tags = (me?.library.tags ?? []).filter(Boolean);
  useFollowFilteredTag(tags, tagFilter, onTagFilter);
  if (!me) {
    // The session ended elsewhere (expired or signed out).
    queueMicrotask(() => onSignedOut({ serverSide: true }));
    return null;
  }
  const signOut = () =>
    onSignedOut({
      beforeForget: () =>
        new Promise((resolve) =>
          commitSignOut({ variables: {}, onCompleted: () => resolve(), onError: () => resolve() }),
        ),
    });
  return (
    <LibraryContext.Provider value={me.library.id}>
      <Live libraryId={me.library.id} onReset={onResync} />
      <header className="top">
        <h1>Library</h1>
        <ConnectionStatus />
        <span className="who">{me.name || me.email}</span>
        <button type="button" onClick={signOut} disabled={signingOut}>
          Sign out
        </button>
      </header>
      <main className="library">
        <div className="side">
          <AddStoryForm tags={tags} />
          <TagList tags={tags} selected={tagFilter} onSelect={onTagFilter} />
        </div>
        <div className="main">
          <StoryList query={data} tags={tags} showList={!tagFilter} />
          {tagFilter ? (
            <Suspense fallback={<p>Loading…</p>}>
              <FilteredStoryList tagName={tagFilter} tags={tags} refreshKey={refreshKey} onClear={() => onTagFilter(null)} />
            </Suspense>
          ) : null}
        </div>
      </main>
    </LibraryContext.Provider>
  );
}

/**
 * The filter names a tag, and tags get renamed and deleted (here or in another tab): follow
 * the filtered tag by id, so a rename moves the route to the new name and a delete clears it.
 */
function useFollowFilteredTag(tags, tagFilter, onTagFilter) {
  const filteredId = useRef(null);
  useEffect(() => {
    if (!tagFilter) {
      filteredId.current = null;
      return;
    }
    const named = tags.find((t) => t.name === tagFilter);
    if (named) {
      filteredId.current = named.id;
      return;
    }
    const followed = tags.find((t) => t.id === filteredId.current);
    if (followed) onTagFilter(followed.name, { replace: true });
    else if (filteredId.current) onTagFilter(null, { replace: true });
  }, [tags, tagFilter, onTagFilter]);
}

function Live({ libraryId, onReset }) {
  useLibraryChannel(libraryId, onReset);
  return null;
}
