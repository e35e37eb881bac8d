/** Application-generated ids (time-ordered UUIDv7) and the timestamp convention (epoch ms). */
import { v7 } from 'uuid';

export const newId = (): string => v7();
export const nowMs = (): number => Date.now();
/** Epoch milliseconds (as stored) → ISO-8601 UTC (as sent on the wire). */
export const iso = (ms: number | null | undefined): string | null =>
  ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString();
