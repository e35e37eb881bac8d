/**
 * The HTTP error mapper: AppError → its status and `{"error": {code, message, details?}}`; body-parser
 * failures → 400/413 (ultimate-express's errors carry no status); driver constraint errors → their
 * domain error; anything else → 500 INTERNAL, logged in full (scrubbed), never shown.
 */
import type { NextFunction, Request, Response } from 'express';
import { translateDbError } from '../../db/errors.js';
import { type AppError, errors, isAppError } from '../../errors.js';
import type { Logger } from '../../logger.js';

export function toAppError(err: unknown, logger: Logger): AppError {
  if (isAppError(err)) return err;
  if (err instanceof SyntaxError) return errors.validation('The request body is not valid JSON.');
  const e = err as { message?: string; type?: string; status?: number };
  if (e?.message === 'Request entity too large' || e?.type === 'entity.too.large' || e?.status === 413) {
    return errors.payloadTooLarge();
  }
  if (e?.type === 'entity.parse.failed') return errors.validation('The request body is not valid JSON.');
  const db = translateDbError(err);
  if (db) return db;
  logger.error({ err }, 'unhandled error');
  return errors.internal();
}

export function sendError(res: Response, err: AppError): void {
  if (err.headers) for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res.status(err.status).json({ error: err.toJSON() });
}

export function errorHandler(logger: Logger) {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    sendError(res, toAppError(err, logger));
  };
}

export function notFoundHandler(_req: Request, res: Response): void {
  sendError(res, errors.notFound('No such route.'));
}
