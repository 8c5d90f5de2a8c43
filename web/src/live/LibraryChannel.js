// The tab's one live subscription: `channel(name: "library", after:)`, selecting what the
// design's LibraryChannelSubscription selects (and the reset event), and an updater that
// applies each event to the store.
// Story and tag fields of `story:update` / `tag:update` need no code: their records share
// ids with the page's stories and tags, so Relay updates every view of them.
import { useMemo } from "react";
import { graphql, useSubscription } from "react-relay/hooks";
import * as library from "./libraryStore.js";

const subscription = graphql`
  subscription LibraryChannelSubscription($after: String) {
    channel(name: "library", after: $after) {
      ... on StoryCreateEvent {
        type
        story { id url title description createdAt }
      }
      ... on StoryUpdateEvent {
        type
        story { id url title description createdAt }
      }
      ... on StoryDeleteEvent {
        type
        deletedStoryId
      }
      ... on TagCreateEvent {
        type
        tag { id name color createdAt }
      }
      ... on TagUpdateEvent {
        type
        tag { id name color createdAt }
      }
      ... on TagDeleteEvent {
        type
        deletedTagId
      }
      ... on StoryTagEvent {
        type
        storyId
        tagIds
      }
      ... on StoryUntagEvent {
        type
        storyId
        tagIds
      }
      ... on LibraryChangeEvent {
        type
        totalStories
        totalTags
      }
      ... on ChannelResetEvent {
        type
        reason
      }
    }
  }
`;

/** Apply one event of the channel to the store of the library `libraryId`. */
export function applyEvent(store, libraryId) {
  const event = store.getRootField("channel");
  const lib = store.get(libraryId);
  if (!event || !lib) return;
  switch (event.getValue("type")) {
    case "story:create":
      library.storyCreated(store, lib, event.getLinkedRecord("story"));
      break;
    case "story:delete":
      library.storyDeleted(store, lib, event.getValue("deletedStoryId"));
      break;
    case "tag:create":
      library.tagCreated(lib, event.getLinkedRecord("tag"));
      break;
    case "tag:update":
      library.tagUpdated(lib);
      break;
    case "tag:delete":
      library.tagDeleted(store, lib, event.getValue("deletedTagId"));
      break;
    case "story:tag":
      library.storyTagged(store, lib, event.getValue("storyId"), event.getValue("tagIds") ?? []);
      break;
    case "story:untag":
      library.storyUntagged(store, lib, event.getValue("storyId"), event.getValue("tagIds") ?? []);
      break;
    case "library:change":
      library.totalsChanged(lib, event.getValue("totalStories"));
      break;
    default:
      break;
  }
}

/**
 * Subscribe this tab to its library's events for as long as the component is mounted. After
 * a lost socket the client resumes from the last event's position (see relay/environment.js);
 * `onReset` runs when the server says it could not, and the page must refetch.
 */
export function useLibraryChannel(libraryId, onReset) {
  useSubscription(
    useMemo(
      () => ({
        subscription,
        variables: { after: null },
        updater: (store) => applyEvent(store, libraryId),
        onNext: (data) => {
          if (data?.channel?.type === "channel:reset") onReset?.();
        },
        onError: (error) => console.warn("library channel:", error.message),
      }),
      [libraryId, onReset],
    ),
  );
}
