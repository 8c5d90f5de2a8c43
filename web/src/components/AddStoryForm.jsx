// The form that saves a new story: url, title, description and tags.
import { useId, useState } from "react";
import { graphql } from "react-relay/hooks";
import * as library from "../live/libraryStore.js";
import { useMutationWithRetry } from "../relay/commitWithRetry.js";
import { errorMessage, FieldError } from "./FieldError.jsx";
import { useLibraryId } from "./LibraryContext.js";
import { TagPicker } from "./TagPicker.jsx";

const mutation = graphql`
  mutation AddStoryFormMutation($input: CreateStoryInput!) {
    createStory(input: $input) {
      story {
        id
        createdAt
        ...StoryItem_story
      }
    }
  }
`;

export function AddStoryForm({ tags }) {
  const libraryId = useLibraryId();
  const [url, setUrl] = useState("");
  const [title, setTitle] = useState("");
  const [description, setDescription] = useState("");
  const [tagIds, setTagIds] = useState([]);
  const [errors, setErrors] = useState({});
  const [commit, saving] = useMutationWithRetry(mutation);
  const ids = { url: useId(), title: useId(), description: useId(), urlError: useId(), formError: useId() };

  const submit = (event) => {
    event.preventDefault();
    setErrors({});
    commit({
      variables: { input: { url: url.trim(), title: title.trim(), description: description.trim() || null, tagIds } },
      updater: (store) => {
        const story = store.getRootField("createStory")?.getLinkedRecord("story");
        const lib = store.get(libraryId);
        if (story && lib) library.storyCreated(store, lib, story);
      },
      onCompleted: () => {
        setUrl("");
        setTitle("");
        setDescription("");
        setTagIds([]);
      },
      onError: (error) => {
        const message = errorMessage(error);
        setErrors(/url/i.test(message) ? { url: message } : { form: message });
      },
    });
  };

  return (
    <form aria-label="Add story" onSubmit={submit} className="story-form add-story">
      <h2>Add a story</h2>
      <label htmlFor={ids.url}>URL</label>
      <input
        id={ids.url}
        value={url}
        onChange={(e) => setUrl(e.target.value)}
        placeholder="https://…"
        required
        aria-invalid={errors.url ? true : undefined}
        aria-describedby={errors.url ? ids.urlError : undefined}
      />
      <FieldError id={ids.urlError} message={errors.url} />
      <label htmlFor={ids.title}>Title</label>
      <input id={ids.title} value={title} onChange={(e) => setTitle(e.target.value)} required />
      <label htmlFor={ids.description}>Description</label>
      <textarea id={ids.description} value={description} onChange={(e) => setDescription(e.target.value)} />
      <TagPicker tags={tags} selected={tagIds} onChange={setTagIds} />
      <FieldError id={ids.formError} message={errors.form} />
      <button type="submit" disabled={saving}>
        Add story
      </button>
    </form>
  );
}
