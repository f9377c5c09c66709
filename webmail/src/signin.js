import { useState } from 'preact/hooks';
import { html } from './html.js';
import { signIn, plainWords } from './api.js';

export function SignIn({ notice, onSignedIn }) {
  const [address, setAddress] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError('');
    try {
      onSignedIn(await signIn(address, password));
    } catch (failure) {
      setError(plainWords(failure));
      setBusy(false);
    }
  }

  return html`
    <main class="signin">
      <form onSubmit=${submit} aria-labelledby="signin-title">
        <h1 id="signin-title">Sign in to mailpipe</h1>
        ${notice && html`<p class="notice" role="status">${notice}</p>`}
        <label for="signin-address">Email address</label>
        <input id="signin-address" type="email" autocomplete="username" required
               value=${address} onInput=${(e) => setAddress(e.target.value)} />
        <label for="signin-password">Password</label>
        <input id="signin-password" type="password" autocomplete="current-password" required
               value=${password} onInput=${(e) => setPassword(e.target.value)} />
        ${error && html`<p class="error" role="alert">${error}</p>`}
        <button type="submit" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
    </main>`;
}
