// Edits of the Relay store that both the live events and this tab's own mutation answers
// make, written so that applying one twice (the mutation's answer, then its event) changes
// nothing the second time.
import { ConnectionHandler } from "relay-runtime";

export const STORIES_KEY = "StoryList_stories";
export const STORIES_BY_TAG_KEY = "FilteredStoryList_storiesByTag";

/** The library's loaded story connections: all stories, and one per tag filter loaded. */
function tagConnection(library, tagName) {
  return ConnectionHandler.getConnection(library, STORIES_BY_TAG_KEY, { tagName });
}

function allConnections(store, library) {
  const connections = [ConnectionHandler.getConnection(library, STORIES_KEY)];
  for (const tag of library.getLinkedRecords("tags") ?? []) {
    if (tag) connections.push(tagConnection(library, tag.getValue("name")));
  }
  return connections.filter(Boolean);
}

function nodeIds(connection) {
  return (connection.getLinkedRecords("edges") ?? []).map((edge) => edge?.getLinkedRecord("node")?.getDataID());
}

/**
 * Put `story` in `connection` at its place, newest first. A story older than every loaded
 * one belongs to a page not loaded yet when there is one. Returns whether it was added.
 */
function insertStory(store, connection, story) {
  const edges = connection.getLinkedRecords("edges") ?? [];
  if (nodeIds(connection).includes(story.getDataID())) return false;
  const createdAt = story.getValue("createdAt") ?? "";
  let at = edges.findIndex((edge) => (edge?.getLinkedRecord("node")?.getValue("createdAt") ?? "") <= createdAt);
  if (at < 0) {
    if (connection.getLinkedRecord("pageInfo")?.getValue("hasNextPage")) return false;
    at = edges.length;
  }
  const edge = ConnectionHandler.createEdge(store, connection, story, "StoryEdge");
  connection.setLinkedRecords([...edges.slice(0, at), edge, ...edges.slice(at)], "edges");
  return true;
}

function removeStory(connection, storyId) {
  if (!nodeIds(connection).includes(storyId)) return false;
  ConnectionHandler.deleteNode(connection, storyId);
  return true;
}

function adjustCount(connection, delta) {
  const count = connection.getValue("totalCount");
  if (typeof count === "number") connection.setValue(Math.max(0, count + delta), "totalCount");
}

function byName(a, b) {
  return (a.getValue("name") ?? "").localeCompare(b.getValue("name") ?? "", undefined, { sensitivity: "base" });
}

/** A created story, from its event or from this tab's createStory answer. */
export function storyCreated(store, library, story) {
  if (!story.getLinkedRecords("tags")) story.setLinkedRecords([], "tags");
  const all = ConnectionHandler.getConnection(library, STORIES_KEY);
  if (all) insertStory(store, all, story);
}

export function storyDeleted(store, library, storyId) {
  for (const connection of allConnections(store, library)) removeStory(connection, storyId);
}

/** The library's total, from `library:change`. */
export function totalsChanged(library, totalStories) {
  const all = ConnectionHandler.getConnection(library, STORIES_KEY);
  if (all) all.setValue(totalStories, "totalCount");
}

export function tagCreated(library, tag) {
  const tags = (library.getLinkedRecords("tags") ?? []).filter(Boolean);
  if (tags.some((t) => t.getDataID() === tag.getDataID())) return;
  library.setLinkedRecords([...tags, tag].sort(byName), "tags");
}

/** A renamed tag keeps its place in name order; its stories show the new name by themselves. */
export function tagUpdated(library) {
  const tags = (library.getLinkedRecords("tags") ?? []).filter(Boolean);
  library.setLinkedRecords([...tags].sort(byName), "tags");
}

export function tagDeleted(store, library, tagId) {
  // The loaded lists, the deleted tag's own included, before the tag leaves the library.
  const connections = allConnections(store, library);
  const tags = (library.getLinkedRecords("tags") ?? []).filter(Boolean);
  library.setLinkedRecords(tags.filter((t) => t.getDataID() !== tagId), "tags");
  for (const connection of connections) {
    for (const edge of connection.getLinkedRecords("edges") ?? []) {
      const story = edge?.getLinkedRecord("node");
      const storyTags = story?.getLinkedRecords("tags");
      if (storyTags) story.setLinkedRecords(storyTags.filter((t) => t && t.getDataID() !== tagId), "tags");
    }
  }
}

/** `story:tag`: the story gains these tags and joins their filtered lists. */
export function storyTagged(store, library, storyId, tagIds) {
  const story = store.get(storyId);
  if (!story) return;
  const current = (story.getLinkedRecords("tags") ?? []).filter(Boolean);
  const tags = tagIds.map((id) => store.get(id)).filter(Boolean);
  const added = tags.filter((tag) => !current.some((t) => t.getDataID() === tag.getDataID()));
  story.setLinkedRecords([...current, ...added].sort(byName), "tags");
  for (const tag of tags) {
    const connection = tagConnection(library, tag.getValue("name"));
    if (connection && insertStory(store, connection, story)) adjustCount(connection, 1);
  }
}

/** `story:untag`: the story loses these tags and leaves their filtered lists. */
export function storyUntagged(store, library, storyId, tagIds) {
  const story = store.get(storyId);
  if (!story) return;
  const current = (story.getLinkedRecords("tags") ?? []).filter(Boolean);
  story.setLinkedRecords(current.filter((t) => !tagIds.includes(t.getDataID())), "tags");
  for (const tagId of tagIds) {
    const name = store.get(tagId)?.getValue("name");
    const connection = name == null ? null : tagConnection(library, name);
    if (connection && removeStory(connection, storyId)) adjustCount(connection, -1);
  }
}
