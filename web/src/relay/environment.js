// The Relay environment of one signed-in session (or of nobody, for signing in):
// queries and mutations over `POST /graphql` with the session's bearer token,
// subscriptions over the session's graphql-ws client. A new session gets a new
// environment, so its store never holds another account's records.
import { Environment, Network, Observable, RecordSource, Store } from "relay-runtime";
import { getSubscriptionClient } from "./subscriptionClient.js";

function fetchFunction(token) {
  return async (operation, variables) => {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await fetch("/graphql", {
      method: "POST",
      headers,
      body: JSON.stringify({ query: operation.text, variables, operationName: operation.name }),
    });
    const body = await response.json().catch(() => null);
    if (!body || (!body.data && body.errors)) {
      const message = body?.errors?.map((e) => e.message).join("; ") || `HTTP ${response.status}`;
      throw new Error(message);
    }
    return body;
  };
}

function subscribeFunction(token, handlers) {
  return (operation, variables) =>
    Observable.create((sink) =>
      getSubscriptionClient(token, handlers).subscribe(
        { operationName: operation.name, query: operation.text, variables },
        {
          next: (value) => sink.next(value),
          error: (error) => sink.error(error instanceof Error ? error : new Error(describe(error))),
          complete: () => sink.complete(),
        },
      ),
    );
}

function describe(error) {
  if (Array.isArray(error)) return error.map((e) => e.message).join("; ");
  if (error && typeof error.code === "number") return `socket closed (${error.code} ${error.reason || ""})`;
  return String(error);
}

/**
 * The environment for `token` (null: signed out). `handlers.onReconnected` runs after the
 * subscription socket comes back; `handlers.onRevoked` when the server ended the session.
 */
export function createRelayEnvironment(token, handlers = {}) {
  const network = token
    ? Network.create(fetchFunction(token), subscribeFunction(token, {
        onReconnected: () => handlers.onReconnected?.(),
        onRevoked: () => handlers.onRevoked?.(),
      }))
    : Network.create(fetchFunction(null));
  return new Environment({ network, store: new Store(new RecordSource()) });
}
