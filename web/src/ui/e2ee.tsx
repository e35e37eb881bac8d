/** The dialog that unlocks this browser's encryption keys (asked for when first needed). */
import { useState } from 'preact/hooks';
import { unlockRequest } from '../state/e2ee';
import { Dialog, ErrorNote, PasswordField, useAction } from './common';

export function UnlockDialog() {
  const req = unlockRequest.value;
  const [secret, setSecret] = useState('');
  const { busy, error, run } = useAction();
  if (!req) return null;
  return (
    <Dialog title="Unlock encryption keys" onClose={req.cancel}>
      <form
        aria-label="Unlock encryption keys"
        onSubmit={(e) => {
          e.preventDefault();
          void run(() => req.submit(secret));
        }}
      >
        <p>{req.reason}</p>
        <p class="muted">
          They are kept in this browser, encrypted with your password (the one you had when this browser first created
          them). The server never sees them.
        </p>
        <PasswordField label="Password" value={secret} onInput={setSecret} />
        <ErrorNote error={error} />
        <button type="submit" class="primary" disabled={busy || !secret}>
          {busy ? 'Unlocking…' : 'Unlock'}
        </button>
      </form>
    </Dialog>
  );
}
