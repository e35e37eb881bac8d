/**
 * The gateway wire protocol (DESIGN.md §7): client ops parsed with zod into a discriminated union, and
 * the server frame builders (events with a `seq`, replies without). Voice ops (§8) join the union by
 * adding their schemas to OP_SCHEMAS; the dispatcher's exhaustive switch then refuses to compile
 * until each new op is handled.
 */
import { z } from 'zod';
import { AppError } from '../errors.js';

const id = z.string().min(1).max(64);
const requestId = z.string().min(1).max(128);

const op = <T extends string, D extends z.ZodType>(type: T, data: D) =>
  z.strictObject({ type: z.literal(type), request_id: requestId.optional(), data });

const empty = z.strictObject({}).optional();

export const PRESENCE_STATUSES = ['online', 'idle', 'dnd', 'invisible'] as const;

/** Every client op. Add voice ops here (one entry each). */
export const OP_SCHEMAS = [
  op('ping', empty),
  op('typing', z.strictObject({ channel_id: id })),
  op('presence', z.strictObject({ status: z.enum(PRESENCE_STATUSES) })),
  op(
    'resume',
    z.strictObject({
      session_id: z.string().min(1).max(64),
      seq: z
        .number()
        .int()
        .min(0)
        .max(2 ** 53),
    }),
  ),
] as const;

export const ClientOp = z.discriminatedUnion('type', OP_SCHEMAS);
export type ClientOp = z.infer<typeof ClientOp>;
export type OpType = ClientOp['type'];

const KNOWN_OPS = new Set<string>(OP_SCHEMAS.map((s) => s.shape.type.value));

export type ParseResult = { ok: true; op: ClientOp } | { ok: false; requestId: string | null; error: AppError };

/** Parses one text frame. Never throws: every failure is an AppError for an error reply. */
export function parseFrame(text: string): ParseResult {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, requestId: null, error: new AppError('INVALID_JSON', 400, 'The frame is not valid JSON.') };
  }
  const rid =
    raw && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>).request_id : undefined;
  const requestIdEcho = typeof rid === 'string' && rid.length > 0 && rid.length <= 128 ? rid : null;
  const type = raw && typeof raw === 'object' ? (raw as Record<string, unknown>).type : undefined;
  if (typeof type !== 'string' || !KNOWN_OPS.has(type)) {
    return { ok: false, requestId: requestIdEcho, error: new AppError('UNKNOWN_OP', 400, 'Unknown op.') };
  }
  const parsed = ClientOp.safeParse(raw);
  if (!parsed.success) {
    const details = parsed.error.issues.slice(0, 5).map((i) => ({ path: i.path.join('.'), message: i.message }));
    return {
      ok: false,
      requestId: requestIdEcho,
      error: new AppError('VALIDATION_FAILED', 400, 'The op is not valid.', { details }),
    };
  }
  return { ok: true, op: parsed.data };
}

export function assertUnreachable(x: never): never {
  throw new Error(`unhandled op ${JSON.stringify(x)}`);
}

/** `{"type","seq","data"}` — serialised once, whatever the number of receivers. */
export const eventFrame = (type: string, seq: number, data: unknown): string =>
  `{"type":${JSON.stringify(type)},"seq":${seq},"data":${JSON.stringify(data ?? {})}}`;

export const okReply = (requestId: string, data: unknown): string =>
  JSON.stringify({ type: 'reply', request_id: requestId, ok: true, data: data ?? {} });

export const errorReply = (requestId: string | null, error: AppError): string =>
  JSON.stringify({ type: 'reply', request_id: requestId, ok: false, error: error.toJSON() });

/** Close codes (DESIGN.md §7). */
export const CLOSE = {
  GOING_AWAY: 1001,
  SESSION_REVOKED: 4001,
  TOO_MANY_MALFORMED: 4002,
  SLOW_CONSUMER: 4008,
  RATE_LIMITED: 4029,
} as const;
