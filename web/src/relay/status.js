// The subscription socket's state as the page shows it: "connecting", "live",
// "reconnecting" or "offline". A tiny external store for React's useSyncExternalStore.

let status = "connecting";
const listeners = new Set();

export function setStatus(next) {
  if (next === status) return;
  status = next;
  for (const listener of listeners) listener();
}

export function getStatus() {
  return status;
}

export function subscribeToStatus(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
