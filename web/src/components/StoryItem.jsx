// One story: its title as a link to its url, its description and tags, and the controls to
// edit, tag, untag and delete it.
import { useId, useState } from "react";
import { graphql, useFragment } from "react-relay/hooks";
import * as library from "../live/libraryStore.js";
import { useMutationWithRetry } from "../relay/commitWithRetry.js";
import { errorMessage, FieldError } from "./FieldError.jsx";
import { useLibraryId } from "./LibraryContext.js";
import { TagPicker } from "./TagPicker.jsx";
import { TagChip } from "./TagChip.jsx";

const updateMutation = graphql`
  mutation StoryItemUpdateMutation($input: UpdateStoryInput!) {
    updateStory(input: $input) {
      story { id title description tags { id name color } }
      error { message }
    }
  }
`;

const deleteMutation = graphql`
  mutation StoryItemDeleteMutation($input: DeleteStoryInput!) {
    deleteStory(input: $input) {
      deletedStoryId
      success
      error { message }
    }
  }
`;

const tagMutation = graphql`
  mutation StoryItemTagMutation($storyId: ID!, $tagIds: [ID!]!, $clientMutationId: String) {
    tagStory(storyId: $storyId, tagIds: $tagIds, clientMutationId: $clientMutationId) { id tags { id name color } }
  }
`;

const untagMutation = graphql`
  mutation StoryItemUntagMutation($storyId: ID!, $tagIds: [ID!]!, $clientMutationId: String) {
    untagStory(storyId: $storyId, tagIds: $tagIds, clientMutationId: $clientMutationId) { id tags { id name color } }
  }
`;

export function StoryItem({ story, tags }) {
  const data = useFragment(
    graphql`
      fragment StoryItem_story on Story {
        id
        url
        title
        description
        createdAt
        tags { id name color }
      }
    `,
    story,
  );
  const libraryId = useLibraryId();
  const [editing, setEditing] = useState(false);
  const [error, setError] = useState(null);
  const [commitDelete, deleting] = useMutationWithRetry(deleteMutation);
  const [commitTag] = useMutationWithRetry(tagMutation);
  const [commitUntag] = useMutationWithRetry(untagMutation);
  const errorId = useId();
  const storyTags = (data.tags ?? []).filter(Boolean);
  const untagged = tags.filter((tag) => !storyTags.some((t) => t.id === tag.id));

  const withLibrary = (apply) => (store) => {
    const lib = store.get(libraryId);
    if (lib) apply(store, lib);
  };
  const remove = () =>
    commitDelete({
      variables: { input: { id: data.id } },
      updater: withLibrary((store, lib) => library.storyDeleted(store, lib, data.id)),
      onError: (e) => setError(errorMessage(e)),
    });
  const tag = (tagId) =>
    commitTag({
      variables: { storyId: data.id, tagIds: [tagId] },
      updater: withLibrary((store, lib) => library.storyTagged(store, lib, data.id, [tagId])),
      onError: (e) => setError(errorMessage(e)),
    });
  const untag = (tagId) =>
    commitUntag({
      variables: { storyId: data.id, tagIds: [tagId] },
      updater: withLibrary((store, lib) => library.storyUntagged(store, lib, data.id, [tagId])),
      onError: (e) => setError(errorMessage(e)),
    });

  if (editing) {
    return (
      <li className="story editing">
        <EditStoryForm story={data} tags={tags} onDone={() => setEditing(false)} />
      </li>
    );
  }
  return (
    <li className="story">
      <a href={data.url} className="story-title" rel="noreferrer noopener" target="_blank">
        {data.title}
      </a>
      <span className="story-url">{hostOf(data.url)}</span>
      {data.description ? <p className="story-description">{data.description}</p> : null}
      <div className="story-tags">
        {storyTags.map((t) => (
          <TagChip key={t.id} tag={t} onRemove={() => untag(t.id)} />
        ))}
        {untagged.length > 0 ? (
          <select aria-label={`Tag “${data.title}”`} value="" onChange={(e) => e.target.value && tag(e.target.value)}>
            <option value="">+ tag</option>
            {untagged.map((t) => (
              <option key={t.id} value={t.id}>
                {t.name}
              </option>
            ))}
          </select>
        ) : null}
      </div>
      <div className="story-actions" aria-describedby={error ? errorId : undefined}>
        <button type="button" onClick={() => setEditing(true)}>
          Edit
        </button>
        <button type="button" onClick={remove} disabled={deleting}>
          Delete
        </button>
        <FieldError id={errorId} message={error} />
      </div>
    </li>
  );
}

function hostOf(url) {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function EditStoryForm({ story, tags, onDone }) {
  const [title, setTitle] = useState(story.title);
  const [description, setDescription] = useState(story.description ?? "");
  const [tagIds, setTagIds] = useState(() => (story.tags ?? []).filter(Boolean).map((t) => t.id));
  const [error, setError] = useState(null);
  const [commit, saving] = useMutationWithRetry(updateMutation);
  const titleId = useId();
  const descriptionId = useId();
  const errorId = useId();
  const submit = (event) => {
    event.preventDefault();
    commit({
      variables: { input: { id: story.id, title, description: description || null, tagIds } },
      onCompleted: (response, errors) => {
        const message = response.updateStory?.error?.message ?? errors?.[0]?.message;
        if (message) setError(message);
        else onDone();
      },
      onError: (e) => setError(errorMessage(e)),
    });
  };
  return (
    <form aria-label="Edit story" onSubmit={submit} className="story-form">
      <label htmlFor={titleId}>Title</label>
      <input id={titleId} value={title} onChange={(e) => setTitle(e.target.value)} required aria-describedby={errorId} />
      <label htmlFor={descriptionId}>Description</label>
      <textarea id={descriptionId} value={description} onChange={(e) => setDescription(e.target.value)} />
      <TagPicker tags={tags} selected={tagIds} onChange={setTagIds} />
      <FieldError id={errorId} message={error} />
      <div className="form-actions">
        <button type="submit" disabled={saving}>
          Save
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
