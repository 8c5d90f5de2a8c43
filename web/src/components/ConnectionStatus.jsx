// The status line: whether this tab's subscription socket is live, reconnecting or offline.
import { useSyncExternalStore } from "react";
import { getStatus, subscribeToStatus } from "../relay/status.js";

const TEXT = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline: changes will show when the connection is back",
};

export function ConnectionStatus() {
  const status = useSyncExternalStore(subscribeToStatus, getStatus);
  return (
    <p role="status" className={`status status-${status}`}>
      <span className="dot" aria-hidden="true" />
      {TEXT[status]}
    </p>
  );
}
