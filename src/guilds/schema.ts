/** zod schemas for guild, member, role, ban and invite request bodies and query strings. */
import { z } from 'zod';
import { permissionsField } from '../access/schema.js';
import { displayName, plainText, position, queryInt } from '../fields.js';
import { ID } from '../ids.js';

export const guildCreate = z.strictObject({ name: displayName(100) });
export const guildUpdate = z
  .strictObject({ name: displayName(100).optional(), owner_id: z.string().regex(ID, 'must be a user id').optional() })
  .refine((b) => Object.keys(b).length > 0, 'nothing to update');

const color = z
  .string()
  .regex(/^#[0-9A-Fa-f]{6}$/, 'must be #RRGGBB')
  .nullable();

export const roleCreate = z.strictObject({
  name: displayName(100),
  color: color.optional(),
  permissions: permissionsField.optional(),
  position: position.optional(),
});
export const roleUpdate = z
  .strictObject({
    name: displayName(100).optional(),
    color: color.optional(),
    permissions: permissionsField.optional(),
    position: position.optional(),
  })
  .refine((b) => Object.keys(b).length > 0, 'nothing to update');

export const banBody = z.strictObject({ reason: plainText(512).optional() }).optional();

export const inviteCreate = z.strictObject({
  max_uses: z.number().int().min(1).max(100_000).nullable().optional(),
  /** Seconds; 1 s to 30 days (the valid_expiration vectors). */
  expires_in: z.number().int().min(1).max(2_592_000).nullable().optional(),
});

export const pageQuery = z.object({
  before: z
    .string()
    .regex(/^\d{1,18}$/, 'must be an audit row id')
    .optional(),
  limit: queryInt(1, 100).default(50),
});

export type GuildCreate = z.output<typeof guildCreate>;
export type GuildUpdate = z.output<typeof guildUpdate>;
export type RoleCreate = z.output<typeof roleCreate>;
export type RoleUpdate = z.output<typeof roleUpdate>;
export type InviteCreate = z.output<typeof inviteCreate>;
export type PageQuery = z.output<typeof pageQuery>;
