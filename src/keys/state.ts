/**
 * Key activation state shared through the database: the keyring file (or the credential copy a
 * service got at start) supplies key material; `key_rotations` says which key is active and which are
 * retired. Every node and the CLI apply the same rows, so a rotation switches keys without anyone
 * re-reading the file.
 */
import { type Keyring, PURPOSES } from '../crypto/keyring.js';
import type { Db } from '../db/knex.js';
import { iso } from '../ids.js';
import * as repo from './repo.js';

export interface KeyState {
  keyring: Keyring;
  /** Newest rotation applied (what nodes report). */
  rotationSeen: string | null;
  /** Activations this keyring cannot follow: the key was staged after this process loaded the file. */
  missing: { purpose: string; keyId: string }[];
}

/** Applies rotation rows (oldest first) to a keyring. */
export function applyRotations(base: Keyring, rotations: readonly repo.RotationRow[]): KeyState {
  let keyring = base;
  const missing: KeyState['missing'] = [];
  for (const purpose of PURPOSES) {
    let active: string | undefined;
    const retired = new Map<string, string>();
    for (const r of rotations) {
      if (r.purpose !== purpose || r.state === 'failed') continue;
      active = r.to_key_id;
      retired.delete(r.to_key_id);
      if (r.from_key_id && r.state === 'done') retired.set(r.from_key_id, iso(r.finished_at) as string);
    }
    if (active && !base.key(purpose, active)) missing.push({ purpose, keyId: active });
    keyring = keyring.withRotationState(purpose, active, retired);
  }
  return { keyring, rotationSeen: rotations.at(-1)?.id ?? null, missing };
}

export async function loadKeyState(db: Db, base: Keyring): Promise<KeyState> {
  return applyRotations(base, await repo.allRotations(db));
}
