/** The dialog that unlocks this browser's encryption keys (asked for when first needed). */
import { useEffect, useState } from 'preact/hooks';
import type { DeviceKeys } from '../e2ee/device';
import { device, ensureDevice, unlockRequest } from '../state/e2ee';
import { ActionButton, Dialog, ErrorNote, PasswordField, useAction } from './common';

/** An ed25519 key in groups of four for comparing by eye (kept here: e2ee/device.ts is a lazy chunk). */
const fingerprint = (k: string) => k.match(/.{1,4}/g)?.join(' ') ?? k;

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

/** Settings: this user's encryption devices with their ed25519 fingerprints, and removing one. */
export function EncryptionDevices() {
  const [list, setList] = useState<DeviceKeys[] | null>(null);
  const action = useAction();
  const { error, run } = action;
  const dev = device.value;
  const load = () =>
    run(async () => {
      if (device.value) setList(await device.value.ownDevices());
    });
  useEffect(() => {
    if (dev) void load();
  }, [dev]);
  return (
    <section aria-labelledby="devices-h">
      <h2 id="devices-h">Encryption devices</h2>
      <p class="muted">
        Each browser where you used end-to-end encryption is a device with its own keys. Compare a fingerprint with what
        the other browser shows before trusting it; remove devices you no longer use.
      </p>
      <ErrorNote error={error} />
      {!dev ? (
        <button
          type="button"
          onClick={() =>
            void run(async () => {
              await ensureDevice('Unlock this browser’s keys to see and manage your devices.');
            })
          }
        >
          Unlock to show devices
        </button>
      ) : (
        <ul class="devices">
          {(list ?? []).map((d) => (
            <li key={d.device_id} data-device-id={d.device_id}>
              <code>{d.device_id}</code>
              {d.device_id === dev.deviceId && <span class="tag">this browser</span>}
              <br />
              <span class="muted">Fingerprint (ed25519): </span>
              <code class="fingerprint">{fingerprint(d.identity_keys.ed25519)}</code>{' '}
              <ActionButton
                action={action}
                danger
                onAct={async () => {
                  await dev.removeDevice(d.device_id);
                  if (d.device_id === dev.deviceId) device.value = null;
                  else await load();
                }}
              >
                Remove
              </ActionButton>
            </li>
          ))}
        </ul>
      )}
      <UnlockDialog />
    </section>
  );
}
