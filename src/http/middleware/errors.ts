/**
 * The HTTP error renderer: whatever a route threw → `toAppError` (src/errors.ts) → its status,
 * headers (Retry-After) and `{"error": {code, message, details?}}`. Unknown errors are logged there
 * and answered 500 INTERNAL, never shown.
 */
import type { NextFunction, Request, Response } from 'express';
import { type AppError, errors, toAppError } from '../../errors.js';
import type { Logger } from '../../logger.js';

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
