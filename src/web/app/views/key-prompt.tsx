// The one question the page asks when the API has keys: which key. Checked against the API before
// it is kept.
import { useState } from 'preact/hooks';
import { described, Field } from './field.tsx';

interface Props {
  /** Why it asks again (a key that was refused). */
  problem: string | null;
  signIn(key: string): Promise<void>;
}

export function KeyPrompt({ problem, signIn }: Props) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const error = problem ?? undefined;
  return (
    <form
      class="key-prompt"
      aria-label="Sign in"
      onSubmit={async (ev) => {
        ev.preventDefault();
        if (!key.trim()) return;
        setBusy(true);
        await signIn(key.trim()).finally(() => setBusy(false));
      }}
    >
      <h2>Sign in</h2>
      <p>
        This itemgen gateway needs an API key (ask whoever runs it, or create one with <code>npm run keys -- create --name NAME</code>). It stays in
        this browser until you sign out.
      </p>
      <Field id="api-key" label="API key" error={error}>
        <input {...described('api-key', error)} type="password" autoComplete="current-password" required value={key} onInput={(ev) => setKey((ev.currentTarget as HTMLInputElement).value)} />
      </Field>
      <button type="submit" class="primary" disabled={busy}>
        Sign in
      </button>
    </form>
  );
}
