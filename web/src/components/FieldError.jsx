// A message shown next to the field it is about (and named by its aria-describedby).
export function FieldError({ id, message }) {
  if (!message) return null;
  return (
    <span id={id} className="field-error" aria-live="polite">
      {message}
    </span>
  );
}

/** The message of a Relay mutation error: the server's GraphQL error text. */
export function errorMessage(error) {
  return error?.source?.errors?.[0]?.message ?? error?.message ?? String(error);
}
