/** Application-generated ids (time-ordered UUIDv7), their syntax, and the timestamp convention (epoch ms). */
import { v7 } from 'uuid';

export const newId = (): string => v7();
export const nowMs = (): number => Date.now();
/** Epoch milliseconds (as stored) → ISO-8601 UTC (as sent on the wire). */
export const iso = (ms: number | null | undefined): string | null =>
  ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString();

/** Ids are UUID text (v7 for ours); anything else can never match a row, so callers answer 404. */
export const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const isId = (s: unknown): s is string => typeof s === 'string' && ID.test(s);
