// One graphql-ws client per signed-in session, created on the first subscription, retrying
// forever with exponential backoff capped at 30 s, the token sent in `connection_init`.
// `resetSubscriptionClient` disposes it (sign-out, or another account signing in).
import { createClient } from "graphql-ws";
import { setStatus } from "./status.js";

// Close codes after which retrying cannot help: the session is gone or the server refuses
// this client for good.
const FATAL_CLOSE_CODES = new Set([4400, 4401, 4403, 4409, 4429]);

let subscriptionClient = null;
let online = typeof navigator === "undefined" ? true : navigator.onLine;
let acknowledged = false;

export function backoff(retries) {
  return Math.min(1000 * 2 ** retries, 30_000);
}

function createSubscriptionClient(token, { onReconnected, onRevoked }) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return createClient({
    url: `${scheme}//${window.location.host}/graphql`,
    connectionParams: { token },
    lazy: true,
    retryAttempts: Infinity,
    shouldRetry: (closeEvent) => {
      const code = closeEvent?.code;
      if (FATAL_CLOSE_CODES.has(code)) {
        if (code === 4403) onRevoked();
        return false;
      }
      return true;
    },
    retryWait: (retries) => new Promise((resolve) => setTimeout(resolve, backoff(retries))),
    on: {
      connecting: (isRetry) => setStatus(online ? (isRetry ? "reconnecting" : "connecting") : "offline"),
      connected: (_socket, _payload, wasRetry) => {
        acknowledged = true;
        setStatus("live");
        if (wasRetry) onReconnected();
      },
      closed: () => {
        acknowledged = false;
        if (subscriptionClient) setStatus(online ? "reconnecting" : "offline");
      },
    },
  });
}

/** The session's client, created on first use. */
export function getSubscriptionClient(token, handlers) {
  if (!subscriptionClient) {
    subscriptionClient = createSubscriptionClient(token, handlers);
  }
  return subscriptionClient;
}

/** Close the socket and forget the client: nothing of this session keeps listening. */
export function resetSubscriptionClient() {
  const client = subscriptionClient;
  subscriptionClient = null;
  if (client) client.dispose();
  setStatus("connecting");
}

if (typeof window !== "undefined") {
  window.addEventListener("offline", () => {
    online = false;
    if (subscriptionClient) setStatus("offline");
  });
  window.addEventListener("online", () => {
    online = true;
    if (subscriptionClient) setStatus(acknowledged ? "live" : "reconnecting");
  });
}
