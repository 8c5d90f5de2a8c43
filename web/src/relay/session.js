// The signed-in session's token, kept in localStorage so a reload stays signed in.
const KEY = "library.session";

export function loadToken() {
  try {
    return window.localStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function saveToken(token) {
  try {
    if (token) window.localStorage.setItem(KEY, token);
    else window.localStorage.removeItem(KEY);
  } catch {
    // Storage may be disabled; the session then lasts as long as the tab.
  }
}
