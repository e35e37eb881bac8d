/**
 * Wraps an async route handler so a rejection reaches the error mapper. ultimate-express only does
 * this with its "catch async errors" setting, which a Router does not inherit from the app.
 */
import type { NextFunction, Request, Response } from 'express';

export const handler =
  (fn: (req: Request, res: Response) => Promise<void>) =>
  (req: Request, res: Response, next: NextFunction): void => {
    fn(req, res).catch(next);
  };
