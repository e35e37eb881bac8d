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

/**
 * A whole number in a query string: plain decimal digits only (no `0x10`, `1e1`, `+5`, spaces or
 * empty value, which `z.coerce.number()` would all accept), then checked against min/max.
 */
export const queryInt = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,9}$/, 'must be a whole number in decimal digits')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
