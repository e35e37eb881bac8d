/** users row → wire shape. Private fields (email, MFA state, admin flag) only for the user themself. */
import type { PublicUserWire, SelfWire } from '../events/event-map.js';
import { iso } from '../ids.js';

export interface UserRow {
  id: string;
  username: string;
  email?: string | null;
  display_name?: string | null;
  is_admin?: boolean | number;
  mfa_enabled?: boolean | number;
  created_at: number;
  [k: string]: unknown;
}

export function presentPublicUser(u: UserRow): PublicUserWire {
  return { id: u.id, username: u.username, display_name: u.display_name ?? null, created_at: iso(u.created_at) };
}

export function presentSelf(u: UserRow): SelfWire {
  return {
    ...presentPublicUser(u),
    email: u.email ?? null,
    is_admin: Boolean(u.is_admin),
    mfa_enabled: Boolean(u.mfa_enabled),
  };
}
