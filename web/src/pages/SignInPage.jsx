// The signed-out page: sign in to an account, or create one.
import { useId, useState } from "react";
import { graphql, useMutation } from "react-relay/hooks";
import { errorMessage, FieldError } from "../components/FieldError.jsx";

const signInMutation = graphql`
  mutation SignInPageSignInMutation($email: String!, $password: String!) {
    signIn(email: $email, password: $password) {
      token
    }
  }
`;

const signUpMutation = graphql`
  mutation SignInPageSignUpMutation($email: String!, $password: String!, $name: String) {
    signUp(email: $email, password: $password, name: $name) {
      token
    }
  }
`;

export function SignInPage({ onSignedIn }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [name, setName] = useState("");
  const [error, setError] = useState(null);
  const [commitSignIn, signingIn] = useMutation(signInMutation);
  const [commitSignUp, signingUp] = useMutation(signUpMutation);
  const ids = { email: useId(), password: useId(), name: useId(), error: useId() };
  const busy = signingIn || signingUp;

  const finish = (session) => (session?.token ? onSignedIn(session.token) : setError("Invalid credentials"));
  const signIn = (event) => {
    event.preventDefault();
    setError(null);
    commitSignIn({
      variables: { email, password },
      onCompleted: (response, errors) => (errors?.length ? setError(errors[0].message) : finish(response.signIn)),
      onError: (e) => setError(errorMessage(e)),
    });
  };
  const signUp = () => {
    setError(null);
    commitSignUp({
      variables: { email, password, name: name.trim() || null },
      onCompleted: (response) => finish(response.signUp),
      onError: (e) => setError(errorMessage(e)),
    });
  };

  return (
    <main className="sign-in">
      <h1>Library</h1>
      <p>Your bookmarks, live in every tab.</p>
      <form aria-label="Sign in" onSubmit={signIn}>
        <label htmlFor={ids.email}>Email</label>
        <input id={ids.email} type="email" autoComplete="username" value={email} onChange={(e) => setEmail(e.target.value)} required />
        <label htmlFor={ids.password}>Password</label>
        <input
          id={ids.password}
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          required
          aria-describedby={error ? ids.error : undefined}
        />
        <label htmlFor={ids.name}>Name</label>
        <input id={ids.name} autoComplete="name" value={name} onChange={(e) => setName(e.target.value)} placeholder="(optional, for sign up)" />
        <FieldError id={ids.error} message={error} />
        <div className="form-actions">
          <button type="submit" disabled={busy}>
            Sign in
          </button>
          <button type="button" onClick={signUp} disabled={busy}>
            Sign up
          </button>
        </div>
      </form>
    </main>
  );
}
