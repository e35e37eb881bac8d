/**
 * The end-to-end encryption device as the app sees it: opened on first need (an encrypted voice
 * channel, DMs), after the user unlocks it with their password or passphrase in a dialog. The Olm
 * code (e2ee/device.ts, libolm's wasm) is a separate chunk loaded only then. Relayed `to_device`
 * messages are decrypted here and handed to whoever registered for their `type`; while the device is
 * locked they stay queued on the server and are pulled after unlocking.
 */
import { signal } from '@preact/signals';
import type { DecryptedToDevice, OlmDevice, ToDeviceEvent } from '../e2ee/device';
import { currentUser, onSignOut } from '../lib/session';

export const device = signal<OlmDevice | null>(null);
/** Set while the app waits for the user's secret; the dialog answers it. */
export const unlockRequest = signal<{ reason: string; submit(secret: string): Promise<void>; cancel(): void } | null>(
  null,
);

type Handler = (m: DecryptedToDevice) => void | Promise<void>;
const handlers = new Map<string, Handler>();
export function onToDevice(type: string, h: Handler): void {
  handlers.set(type, h);
}

let opening: Promise<OlmDevice> | undefined;

async function dispatch(dev: OlmDevice, ev: ToDeviceEvent): Promise<void> {
  const m = await dev.receive(ev).catch(() => null);
  const type = m?.payload.type;
  if (m && typeof type === 'string') await handlers.get(type)?.(m);
}

/** The unlocked device, asking the user for the secret when needed. Rejects when they cancel. */
export function ensureDevice(reason: string): Promise<OlmDevice> {
  if (device.value) return Promise.resolve(device.value);
  opening ??= new Promise<OlmDevice>((resolve, reject) => {
    unlockRequest.value = {
      reason,
      submit: async (secret) => {
        const me = currentUser.value;
        if (!me) throw new Error('Not signed in.');
        const { OlmDevice } = await import('../e2ee/device');
        const dev = await OlmDevice.open(me.id, secret); // throws WrongSecretError: the dialog stays
        device.value = dev;
        unlockRequest.value = null;
        resolve(dev);
        for (const ev of await dev.pullQueued().catch(() => [])) await dispatch(dev, ev);
      },
      cancel: () => {
        unlockRequest.value = null;
        reject(Object.assign(new Error('The encryption keys stay locked.'), { code: 'E2EE_LOCKED' }));
      },
    };
  }).finally(() => {
    opening = undefined;
  });
  return opening;
}

/** A `to_device` gateway event. */
export function applyToDevice(ev: ToDeviceEvent): void {
  const dev = device.value;
  if (dev) void dispatch(dev, ev);
}

onSignOut(() => {
  device.value?.close();
  device.value = null;
  unlockRequest.value?.cancel();
});
