/**
 * Client → server ops as data: each op is a zod schema of `{type, request_id?, data}` (so frames are
 * parsed, never cast) and a handler. The gateway builds its op union from every module's schemas and
 * its handler map as `OpHandlers<ClientOp>`: a module that adds an op schema without a handler (or a
 * handler for an op that does not exist) does not compile. Handlers authorise against the database,
 * never against what the client says, and return the reply data or throw an AppError.
 */
import { z } from 'zod';
import type { ClientConnection } from './connection.js';

const requestId = z.string().min(1).max(128);

/** The schema of one op: `{"type": <type>, "request_id"?: "…", "data": <data>}`, nothing else. */
export const op = <T extends string, D extends z.ZodType>(type: T, data: D) =>
  z.strictObject({ type: z.literal(type), request_id: requestId.optional(), data });

/** An op with no data (`data` may be omitted or `{}`). */
export const noData = z.strictObject({}).optional();

/** An id in op data (ids are checked against the database by the handler, like in REST paths). */
export const opId = z.string().min(1).max(64);

type AnyOp = { type: string; data?: unknown };

export type OpHandler<O extends AnyOp, C extends ClientConnection = ClientConnection> = (
  conn: C,
  data: O['data'],
) => unknown;

/** One handler per op type of the union `Op`, each receiving its own op's parsed data. */
export type OpHandlers<Op extends AnyOp, C extends ClientConnection = ClientConnection> = {
  [K in Op['type']]: OpHandler<Extract<Op, { type: K }>, C>;
};
