// The app's frame: which session is signed in, its Relay environment, and the route
// (`/` for every story, `/tag/<name>` for one tag's).
import { Suspense, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { RelayEnvironmentProvider } from "react-relay/hooks";
import { LibraryPage } from "./pages/LibraryPage.jsx";
import { SignInPage } from "./pages/SignInPage.jsx";
import { createRelayEnvironment } from "./relay/environment.js";
import { loadToken, saveToken } from "./relay/session.js";
import { resetSubscriptionClient } from "./relay/subscriptionClient.js";

const TAG_ROUTE = /^\/tag\/(.+)$/;

function tagFromLocation() {
  const match = TAG_ROUTE.exec(window.location.pathname);
  return match ? decodeURIComponent(match[1]) : null;
}

function useTagRoute() {
  const [tag, setTag] = useState(tagFromLocation);
  useEffect(() => {
    const onPop = () => setTag(tagFromLocation());
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);
  /** Filter by the tag named `next` (null: every story); `replace` keeps the history entry. */
  const navigate = useCallback((next, { replace = false } = {}) => {
    const path = next ? `/tag/${encodeURIComponent(next)}` : "/";
    if (replace) window.history.replaceState(null, "", path);
    else window.history.pushState(null, "", path);
    setTag(next);
  }, []);
  return [tag, navigate];
}

export function App() {
  const [token, setToken] = useState(loadToken);
  const [refreshKey, setRefreshKey] = useState(0);
  const [tagFilter, setTagFilter] = useTagRoute();
  const forgetRef = useRef(null);

  /** End this tab's session: close the socket first, then (optionally) tell the server. */
  const signOut = useCallback(async ({ beforeForget } = {}) => {
    resetSubscriptionClient();
    if (beforeForget) await beforeForget();
    saveToken(null);
    setToken(null);
  }, []);
  forgetRef.current = signOut;

  const environment = useMemo(
    () =>
      createRelayEnvironment(token, {
        onResync: () => setRefreshKey((key) => key + 1),
        onRevoked: () => forgetRef.current?.(),
      }),
    [token],
  );

  const resync = useCallback(() => setRefreshKey((key) => key + 1), []);

  const signIn = useCallback((next) => {
    resetSubscriptionClient();
    saveToken(next);
    setToken(next);
  }, []);

  return (
    <RelayEnvironmentProvider environment={environment} key={token ?? "signed-out"}>
      {token ? (
        <Suspense fallback={<p className="loading">Loading your library…</p>}>
          <LibraryPage refreshKey={refreshKey} onResync={resync} tagFilter={tagFilter} onTagFilter={setTagFilter} onSignedOut={signOut} />
        </Suspense>
      ) : (
        <SignInPage onSignedIn={signIn} />
      )}
    </RelayEnvironmentProvider>
  );
}
