/** zod schemas for guild channel bodies and per-role overrides. */
import { z } from 'zod';
import { permissionsField } from '../access/schema.js';
import { displayName, plainText, position } from '../fields.js';

const userLimit = z.number().int().min(0).max(99).nullable();

export const channelCreate = z.strictObject({
  name: displayName(100),
  type: z.enum(['text', 'voice']),
  topic: plainText(1024).nullable().optional(),
  position: position.optional(),
  user_limit: userLimit.optional(),
  e2ee_voice: z.boolean().optional(),
});
export const channelUpdate = z
  .strictObject({
    name: displayName(100).optional(),
    topic: plainText(1024).nullable().optional(),
    position: position.optional(),
    user_limit: userLimit.optional(),
    e2ee_voice: z.boolean().optional(),
  })
  .refine((b) => Object.keys(b).length > 0, 'nothing to update');

export const overrideBody = z.strictObject({ allow: permissionsField, deny: permissionsField });

export type ChannelCreate = z.output<typeof channelCreate>;
export type ChannelUpdate = z.output<typeof channelUpdate>;
export type OverrideBody = z.output<typeof overrideBody>;
