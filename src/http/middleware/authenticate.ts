/**
 * Bearer authentication for HTTP routes: `Authorization: Bearer <access token>` only (no cookies, so
 * no ambient credentials). Sets `req.auth`.
 */
import type { NextFunction, Request, Response } from 'express';
import type { AuthInfo } from '../../auth/session-guard.js';
import type { AppContext } from '../../context.js';
import { errors } from '../../errors.js';

declare module 'express-serve-static-core' {
  interface Request {
    auth?: AuthInfo;
  }
}

export function bearerToken(req: Request): string | undefined {
  const h = req.get('authorization');
  if (!h) return undefined;
  const m = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(h.trim());
  return m?.[1];
}

export function requireAuth(ctx: AppContext) {
  return async (req: Request, _res: Response, next: NextFunction) => {
    try {
      req.auth = await ctx.sessions.authenticate(bearerToken(req));
      next();
    } catch (e) {
      next(e);
    }
  };
}

/** The authenticated caller; only valid after requireAuth. */
export function authOf(req: Request): AuthInfo {
  if (!req.auth) throw errors.unauthenticated();
  return req.auth;
}
