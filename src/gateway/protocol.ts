/**
 * The gateway wire protocol (DESIGN.md §7): the client op union, parsed with zod from every module's
 * op schemas, and the server frame builders (events with a `seq`, replies without). A feature adds its
 * ops by appending its schemas to OP_SCHEMAS; its handlers then must be in the handler map (ops.ts),
 * or nothing compiles.
 */
import { z } from 'zod';
import { type AppError, errors } from '../errors.js';
import { noData, op, opId } from '../events/ops.js';
import { VOICE_OP_SCHEMAS } from '../voice/schema.js';

export const PRESENCE_STATUSES = ['online', 'idle', 'dnd', 'invisible'] as const;

/** The gateway's own ops. */
export const CORE_OP_SCHEMAS = [
  op('ping', noData),
  op('typing', z.strictObject({ channel_id: opId })),
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

/** Every client op: the core ops, then each feature's (e.g. `...VOICE_OP_SCHEMAS`). */
export const OP_SCHEMAS = [...CORE_OP_SCHEMAS, ...VOICE_OP_SCHEMAS] as const;

export const ClientOp = z.discriminatedUnion('type', OP_SCHEMAS);
export type ClientOp = z.infer<typeof ClientOp>;
export type OpType = ClientOp['type'];
export type CoreOp = z.infer<(typeof CORE_OP_SCHEMAS)[number]>;

const KNOWN_OPS = new Set<string>(OP_SCHEMAS.map((s) => s.shape.type.value));

export type ParseResult = { ok: true; op: ClientOp } | { ok: false; requestId: string | null; error: AppError };

/** Parses one text frame. Never throws: every failure is an AppError for an error reply. */
export function parseFrame(text: string): ParseResult {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, requestId: null, error: errors.invalidJson() };
  }
  const rid =
    raw && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>).request_id : undefined;
  const requestIdEcho = typeof rid === 'string' && rid.length > 0 && rid.length <= 128 ? rid : null;
  const type = raw && typeof raw === 'object' ? (raw as Record<string, unknown>).type : undefined;
  if (typeof type !== 'string' || !KNOWN_OPS.has(type)) {
    return { ok: false, requestId: requestIdEcho, error: errors.unknownOp() };
  }
  const parsed = ClientOp.safeParse(raw);
  if (!parsed.success) {
    const details = parsed.error.issues.slice(0, 5).map((i) => ({ path: i.path.join('.'), message: i.message }));
    return { ok: false, requestId: requestIdEcho, error: errors.validation('The op is not valid.', details) };
  }
  return { ok: true, op: parsed.data };
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
  INTERNAL: 1011,
  SESSION_REVOKED: 4001,
  TOO_MANY_MALFORMED: 4002,
  SLOW_CONSUMER: 4008,
  RATE_LIMITED: 4029,
} as const;
