/** Session rows and token pairs → wire shapes of /auth. */
import { iso } from '../ids.js';
import type { SessionRow } from './repo.js';

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  expires_in: number;
}

/** One entry of GET /auth/sessions: a session family, described by its live token row. */
export function presentSession(row: SessionRow, currentFamilyId: string) {
  return {
    id: row.family_id,
    ip_address: row.ip_address,
    user_agent: row.user_agent,
    created_at: iso(row.created_at),
    last_used_at: iso(row.last_used_at),
    expires_at: iso(row.expires_at),
    current: row.family_id === currentFamilyId,
  };
}
