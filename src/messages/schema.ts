/** zod schemas for message bodies and the history query. Lengths count characters (code points). */
import { z } from 'zod';
import { noNul, queryInt } from '../fields.js';
import { ID } from '../ids.js';

const chars = (s: string) => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

const content = z
  .string()
  .refine((s) => chars(s) >= 1, 'must not be empty')
  .refine((s) => chars(s) <= 4000, 'must be at most 4000 characters')
  .refine(noNul, 'must not contain NUL characters');
const nonce = z.string().min(1).max(128);
const id = z.string().regex(ID, 'must be an id');

export const messageCreate = z
  .strictObject({
    content,
    encrypted: z.boolean().optional(),
    nonce: nonce.nullable().optional(),
    reply_to: id.nullable().optional(),
    attachment_ids: z
      .array(id)
      .max(10)
      .refine((a) => new Set(a).size === a.length, 'must not repeat')
      .optional(),
  })
  .superRefine((b, c) => {
    if (b.encrypted && !b.nonce) c.addIssue({ code: 'custom', path: ['nonce'], message: 'required when encrypted' });
    if (!b.encrypted && b.nonce)
      c.addIssue({ code: 'custom', path: ['nonce'], message: 'only for encrypted messages' });
  });
export type MessageCreate = z.output<typeof messageCreate>;

export const messageEdit = z.strictObject({ content, nonce: nonce.optional() });
export type MessageEdit = z.output<typeof messageEdit>;

export const historyQuery = z.object({
  before: id.optional(),
  after: id.optional(),
  limit: queryInt(1, 100).default(50),
});
export type HistoryQuery = z.output<typeof historyQuery>;
