// The Relay environment of one signed-in session (or of nobody, for signing in):
// queries and mutations over `POST /graphql` with the session's bearer token,
// subscriptions over the session's graphql-ws client. A new session gets a new
// environment, so its store never holds another account's records.
import { Environment, Network, Observable, RecordSource, Store } from "relay-runtime";
import { getSubscriptionClient } from "./subscriptionClient.js";

/**
 * The document of a request: its id when relay-compiler persisted it (always, in this app's
 * build: web/relay.config.json `persistConfig`; the server knows the id from
 * dist/persisted-documents.json), else its text. Over HTTP and in the graphql-ws `subscribe`
 * payload alike, the id goes in a top-level `documentId` (the GraphQL-over-HTTP
 * persisted-documents convention); the server then ignores `query`.
 */
function documentOf(operation) {
  return operation.id != null ? { documentId: operation.id } : { query: operation.text };
}

/**
 * Queries and mutations over `POST /graphql`. A mutation whose outcome is unknown fails with
 * `error.outcomeUnknown` set (commitWithRetry.js retries it with its key): when the server says
 * so (a GraphQL error with `extensions.code` OUTCOME_UNKNOWN, even beside data) or when no
 * answer came (the request may have been applied before the connection broke).
 */
function fetchFunction(token) {
  return async (operation, variables) => {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    const mutation = operation.operationKind === "mutation";
    let response;
    try {
      response = await fetch("/graphql", {
        method: "POST",
        headers,
        body: JSON.stringify({ ...documentOf(operation), variables, operationName: operation.name }),
      });
    } catch (error) {
      throw Object.assign(new Error(`No answer from the server (${error.message})`), { outcomeUnknown: mutation });
    }
    const body = await response.json().catch(() => null);
    const unknown = mutation && Boolean(body?.errors?.some((e) => e.extensions?.code === "OUTCOME_UNKNOWN"));
    if (!body || (!body.data && body.errors) || unknown) {
      const message = body?.errors?.map((e) => e.message).join("; ") || `HTTP ${response.status}`;
      throw Object.assign(new Error(message), { outcomeUnknown: unknown });
    }
    return body;
  };
}

/**
 * Subscriptions over the session's graphql-ws client. One that declares `$after` resumes: the
 * client sends the same payload object again on every reconnect, so keeping the position of
 * the last event in its `after` makes the server replay exactly what the tab missed.
 */
function subscribeFunction(token, handlers, resume) {
  return (operation, variables) =>
    Observable.create((sink) => {
      // The graphql-ws client refuses to send a `subscribe` whose `query` is not a string: an
      // empty one goes beside the id (the server reads `documentId` first).
      const payload = { operationName: operation.name, query: "", ...documentOf(operation), variables: { ...variables } };
      // Relay hands over every variable the operation declares (undefined when not given).
      const resumable = Object.hasOwn(variables, "after");
      return getSubscriptionClient(token, handlers).subscribe(payload, {
        next: (value) => {
          const position = value?.extensions?.position;
          if (resumable && typeof position === "string") {
            payload.variables.after = position;
            resume.positioned = true;
          }
          sink.next(value);
        },
        error: (error) => sink.error(error instanceof Error ? error : new Error(describe(error))),
        complete: () => sink.complete(),
      });
    });
}

function describe(error) {
  if (Array.isArray(error)) return error.map((e) => e.message).join("; ");
  if (error && typeof error.code === "number") return `socket closed (${error.code} ${error.reason || ""})`;
  return String(error);
}

/**
 * The environment for `token` (null: signed out). `handlers.onResync` runs when the page must
 * refetch: the socket came back and its subscription had no position to resume from yet (a
 * resumed one replays what it missed instead); `handlers.onRevoked` when the server ended the
 * session.
 */
export function createRelayEnvironment(token, handlers = {}) {
  const resume = { positioned: false };
  const network = token
    ? Network.create(
        fetchFunction(token),
        subscribeFunction(
          token,
          {
            onReconnected: () => {
              if (!resume.positioned) handlers.onResync?.();
            },
            onRevoked: () => handlers.onRevoked?.(),
          },
          resume,
        ),
      )
    : Network.create(fetchFunction(null));
  return new Environment({ network, store: new Store(new RecordSource()) });
}
