/** The permission bitfield as a request field (roles, channel overrides). */
import { z } from 'zod';
import { parsePermissions } from './permissions.js';

/** A decimal string (or safe integer) → bigint; unknown bits or out of range → VALIDATION_FAILED. */
export const permissionsField = z.union([z.string(), z.number()]).transform((v, c) => {
  const p = parsePermissions(v);
  if (p === undefined) {
    c.addIssue({
      code: 'custom',
      message: 'must be a permission bitfield (decimal string) with only known permission bits',
    });
    return z.NEVER;
  }
  return p;
});
