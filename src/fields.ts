/** zod field rules shared by several features' request schemas (names, positions, NUL-free text). */
import { z } from 'zod';

/** Postgres text cannot hold NUL; refusing it keeps both databases identical. */
export const noNul = (s: string): boolean => !s.includes('\u0000');

/** A display name: NFC, trimmed, 1..max characters, no control characters. */
export const displayName = (max: number) =>
  z
    .string()
    .transform((s) => s.normalize('NFC').trim())
    .pipe(z.string().min(1, 'must not be empty').max(max, `must be at most ${max} characters`))
    .refine((s) => !/\p{Cc}/u.test(s), 'must not contain control characters');

/** Free text of at most `max` characters (topics, ban reasons). */
export const plainText = (max: number) => z.string().max(max).refine(noNul, 'must not contain NUL characters');

/** Role and channel positions. */
export const position = z.number().int().min(0).max(1_000_000);
