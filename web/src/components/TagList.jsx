// The library's tags: create, rename, recolor and delete them, and pick one to filter by.
import { useId, useState } from "react";
import { graphql } from "react-relay/hooks";
import * as library from "../live/libraryStore.js";
import { useMutationWithRetry } from "../relay/commitWithRetry.js";
import { errorMessage, FieldError } from "./FieldError.jsx";
import { useLibraryId } from "./LibraryContext.js";

const createMutation = graphql`
  mutation TagListCreateMutation($input: CreateTagInput!) {
    createTag(input: $input) {
      tag { id name color }
      error {
        __typename
        ... on InvalidTagNameError { message }
        ... on TagNameExistsError { message }
      }
    }
  }
`;

const updateMutation = graphql`
  mutation TagListUpdateMutation($input: UpdateTagInput!) {
    updateTag(input: $input) {
      tag { id name color }
      error {
        __typename
        ... on InvalidTagNameError { message }
        ... on TagNameExistsError { message }
        ... on TagNotFoundError { message }
      }
    }
  }
`;

const deleteMutation = graphql`
  mutation TagListDeleteMutation($input: DeleteTagInput!) {
    deleteTag(input: $input) {
      deletedTagId
      success
    }
  }
`;

const PALETTE = ["#2563eb", "#16a34a", "#db2777", "#ea580c", "#7c3aed", "#0891b2", "#ca8a04", "#dc2626"];

export function TagList({ tags, selected, onSelect }) {
  return (
    <section aria-labelledby="tags-heading" className="tags">
      <h2 id="tags-heading">Tags</h2>
      <AddTagForm nextColor={PALETTE[tags.length % PALETTE.length]} />
      <ul aria-label="Tags">
        {tags.map((tag) => (
          <TagItem key={tag.id} tag={tag} selected={selected === tag.name} onSelect={onSelect} />
        ))}
      </ul>
    </section>
  );
}

function AddTagForm({ nextColor }) {
  const libraryId = useLibraryId();
  const [name, setName] = useState("");
  const [color, setColor] = useState(null);
  const [error, setError] = useState(null);
  const [commit, saving] = useMutationWithRetry(createMutation);
  const nameId = useId();
  const colorId = useId();
  const errorId = useId();
  const submit = (event) => {
    event.preventDefault();
    setError(null);
    commit({
      variables: { input: { name, color: color ?? nextColor } },
      updater: (store) => {
        const tag = store.getRootField("createTag")?.getLinkedRecord("tag");
        const lib = store.get(libraryId);
        if (tag && lib) library.tagCreated(lib, tag);
      },
      onCompleted: (response) => {
        const refused = response.createTag?.error;
        if (refused) {
          setError(refused.message);
        } else {
          setName("");
          setColor(null);
        }
      },
      onError: (e) => setError(errorMessage(e)),
    });
  };
  return (
    <form aria-label="Add tag" onSubmit={submit} className="tag-form">
      <label htmlFor={nameId}>Tag name</label>
      <input
        id={nameId}
        value={name}
        onChange={(e) => setName(e.target.value)}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? errorId : undefined}
      />
      <label htmlFor={colorId}>Tag color</label>
      <input id={colorId} type="color" value={color ?? nextColor} onChange={(e) => setColor(e.target.value)} />
      <button type="submit" disabled={saving}>
        Add tag
      </button>
      <FieldError id={errorId} message={error} />
    </form>
  );
}

function TagItem({ tag, selected, onSelect }) {
  const libraryId = useLibraryId();
  const [editing, setEditing] = useState(false);
  const [commitDelete, deleting] = useMutationWithRetry(deleteMutation);
  const remove = () =>
    commitDelete({
      variables: { input: { id: tag.id } },
      updater: (store) => {
        const lib = store.get(libraryId);
        if (lib) library.tagDeleted(store, lib, tag.id);
      },
    });
  if (editing) {
    return (
      <li className="tag editing">
        <EditTagForm tag={tag} onDone={() => setEditing(false)} />
      </li>
    );
  }
  return (
    <li className="tag">
      <button type="button" className="tag-filter" aria-pressed={selected} onClick={() => onSelect(selected ? null : tag.name)}>
        <span className="swatch" style={{ backgroundColor: tag.color }} aria-hidden="true" />
        {tag.name}
      </button>
      <button type="button" onClick={() => setEditing(true)} aria-label={`Edit tag ${tag.name}`}>
        Edit
      </button>
      <button type="button" onClick={remove} disabled={deleting} aria-label={`Delete tag ${tag.name}`}>
        Delete
      </button>
    </li>
  );
}

function EditTagForm({ tag, onDone }) {
  const libraryId = useLibraryId();
  const [name, setName] = useState(tag.name);
  const [color, setColor] = useState(tag.color);
  const [error, setError] = useState(null);
  const [commit, saving] = useMutationWithRetry(updateMutation);
  const nameId = useId();
  const colorId = useId();
  const errorId = useId();
  const submit = (event) => {
    event.preventDefault();
    commit({
      variables: { input: { id: tag.id, name, color } },
      updater: (store) => {
        const lib = store.get(libraryId);
        if (lib) library.tagUpdated(lib);
      },
      onCompleted: (response) => {
        const refused = response.updateTag?.error;
        if (refused) setError(refused.message);
        else onDone();
      },
      onError: (e) => setError(errorMessage(e)),
    });
  };
  return (
    <form aria-label={`Edit tag ${tag.name}`} onSubmit={submit} className="tag-form">
      <label htmlFor={nameId}>Name</label>
      <input
        id={nameId}
        value={name}
        onChange={(e) => setName(e.target.value)}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? errorId : undefined}
      />
      <label htmlFor={colorId}>Color</label>
      <input id={colorId} type="color" value={toHex(color)} onChange={(e) => setColor(e.target.value)} />
      <button type="submit" disabled={saving}>
        Save
      </button>
      <button type="button" onClick={onDone}>
        Cancel
      </button>
      <FieldError id={errorId} message={error} />
    </form>
  );
}

/** `<input type="color">` takes only #rrggbb; other colors start from black. */
function toHex(color) {
  return /^#[0-9a-f]{6}$/i.test(color) ? color : "#000000";
}
