// Library mutations that a lost answer cannot apply twice. Each mutation is sent with a fresh
// `clientMutationId` (an idempotency key the server keeps for a day) and, when its outcome is
// unknown (the server answered OUTCOME_UNKNOWN, or no answer came at all), sent again with the
// same key: the server answers a key it has already seen from the first attempt, so a change
// that was applied is not applied again, and one that was not is applied now.
import { useCallback, useState } from "react";
import { commitMutation } from "relay-runtime";
import { useRelayEnvironment } from "react-relay/hooks";

/** The waits before each retry: together they outlast a cluster node's fail-over (~3 s). */
export const RETRY_DELAYS_MS = [250, 1000, 3000];

/** Whether a failed mutation may or may not have been applied (see environment.js). */
export function outcomeUnknown(error) {
  return error?.outcomeUnknown === true;
}

/**
 * The key in `variables`: in `input` for an operation that takes one, else as the operation's
 * own `$clientMutationId` (tagStory, untagStory).
 */
function withKey(variables, key) {
  return variables.input
    ? { ...variables, input: { ...variables.input, clientMutationId: key } }
    : { ...variables, clientMutationId: key };
}

/**
 * `commitMutation` with a key, retried with that key after an unknown outcome (up to
 * `delays.length` times). `config` is Relay's; `onError` hears only the last failure.
 */
export function commitWithRetry(environment, mutation, config, delays = RETRY_DELAYS_MS) {
  const variables = withKey(config.variables ?? {}, crypto.randomUUID());
  let current = null;
  let timer = null;
  let disposed = false;
  const attempt = (retries) => {
    current = commitMutation(environment, {
      ...config,
      mutation,
      variables,
      onError: (error) => {
        if (!disposed && retries < delays.length && outcomeUnknown(error)) {
          timer = setTimeout(() => attempt(retries + 1), delays[retries]);
        } else {
          config.onError?.(error);
        }
      },
    });
  };
  attempt(0);
  return {
    dispose() {
      disposed = true;
      clearTimeout(timer);
      current?.dispose();
    },
  };
}

/**
 * Like react-relay's `useMutation`, for library mutations: `[commit, inFlight]`, where each
 * commit goes through `commitWithRetry` and stays in flight across its retries.
 */
export function useMutationWithRetry(mutation) {
  const environment = useRelayEnvironment();
  const [inFlight, setInFlight] = useState(0);
  const commit = useCallback(
    (config) => {
      setInFlight((n) => n + 1);
      let settled = false;
      const settle = () => {
        if (!settled) setInFlight((n) => n - 1);
        settled = true;
      };
      const handle = commitWithRetry(environment, mutation, {
        ...config,
        onCompleted: (response, errors) => {
          settle();
          config.onCompleted?.(response, errors);
        },
        onError: (error) => {
          settle();
          config.onError?.(error);
        },
      });
      return {
        dispose() {
          handle.dispose();
          settle();
        },
      };
    },
    [environment, mutation],
  );
  return [commit, inFlight > 0];
}
