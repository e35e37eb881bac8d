/** zod schemas for guild, member, role, ban, invite and channel request bodies and query strings. */
import { z } from 'zod';
import { parsePermissions } from './permissions.js';

/** Ids are UUIDv7 text; anything else can never match a row, so it is refused as a 404 by callers. */
export const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const isId = (s: unknown): s is string => typeof s === 'string' && ID.test(s);

const noNul = (s: string) => !s.includes('\u0000');

const name = (max: number) =>
  z
    .string()
    .transform((s) => s.normalize('NFC').trim())
    .pipe(z.string().min(1, 'must not be empty').max(max, `must be at most ${max} characters`))
    .refine((s) => !/\p{Cc}/u.test(s), 'must not contain control characters');

export const permissionsField = z.union([z.string(), z.number()]).transform((v, c) => {
  const p = parsePermissions(v);
  if (p === undefined) {
    c.addIssue({ code: 'custom', message: 'must be a permission bitfield (decimal string)' });
    return z.NEVER;
  }
  return p;
});

export const guildCreate = z.strictObject({ name: name(100) });
export const guildUpdate = z
  .strictObject({ name: name(100).optional(), owner_id: z.string().regex(ID, 'must be a user id').optional() })
  .refine((b) => Object.keys(b).length > 0, 'nothing to update');

const color = z
  .string()
  .regex(/^#[0-9A-Fa-f]{6}$/, 'must be #RRGGBB')
  .nullable();
const position = z.number().int().min(0).max(1_000_000);

export const roleCreate = z.strictObject({
  name: name(100),
  color: color.optional(),
  permissions: permissionsField.optional(),
  position: position.optional(),
});
export const roleUpdate = z
  .strictObject({
    name: name(100).optional(),
    color: color.optional(),
    permissions: permissionsField.optional(),
    position: position.optional(),
  })
  .refine((b) => Object.keys(b).length > 0, 'nothing to update');

export const banBody = z
  .strictObject({ reason: z.string().max(512).refine(noNul, 'must not contain NUL characters').optional() })
  .optional();

export const inviteCreate = z.strictObject({
  max_uses: z.number().int().min(1).max(100_000).nullable().optional(),
  /** Seconds; 1 s to 30 days (the valid_expiration vectors). */
  expires_in: z.number().int().min(1).max(2_592_000).nullable().optional(),
});
export const INVITE_CODE = /^[A-Za-z0-9_-]{6,32}$/;

export const channelCreate = z.strictObject({
  name: name(100),
  type: z.enum(['text', 'voice']),
  topic: z.string().max(1024).refine(noNul, 'must not contain NUL characters').nullable().optional(),
  position: position.optional(),
  user_limit: z.number().int().min(0).max(99).nullable().optional(),
});
export const channelUpdate = z
  .strictObject({
    name: name(100).optional(),
    topic: z.string().max(1024).refine(noNul, 'must not contain NUL characters').nullable().optional(),
    position: position.optional(),
    user_limit: z.number().int().min(0).max(99).nullable().optional(),
  })
  .refine((b) => Object.keys(b).length > 0, 'nothing to update');

export const overrideBody = z.strictObject({ allow: permissionsField, deny: permissionsField });

export const pageQuery = z.object({
  before: z
    .string()
    .regex(/^\d{1,18}$/, 'must be an audit row id')
    .optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
});
