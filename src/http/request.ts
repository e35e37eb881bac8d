/**
 * What a route reads from a request, written once: the client address, path parameters, the acting
 * user (for services and the audit log) and the request metadata of account verbs.
 */
import type { Request } from 'express';
import type { Actor } from '../actor.js';
import type { RequestMeta } from '../auth/service.js';
import { normalizeIp } from '../net/ip.js';
import { authOf } from './middleware/authenticate.js';

/** The client address: the socket peer, or X-Forwarded-For when the peer is a trusted proxy. */
export const clientIp = (req: Request): string => normalizeIp(req.ip);

/** A path parameter as text ('' when absent: services answer 404 for ids that cannot match). */
export const param = (req: Request, name: string): string => String(req.params[name] ?? '');

/**
 * The authenticated caller as an Actor (only after requireAuth). The address is read when a service
 * asks for it (audit rows), so the hot message path does not pay for it.
 */
class RequestActor implements Actor {
  readonly userId: string;
  readonly #req: Request;

  constructor(req: Request, userId: string) {
    this.#req = req;
    this.userId = userId;
  }

  get ip(): string {
    return clientIp(this.#req);
  }
}

export const actorOf = (req: Request): Actor => new RequestActor(req, authOf(req).userId);

/** Address and user agent, recorded on sessions and account audit rows. */
export const requestMeta = (req: Request): RequestMeta => ({ ip: clientIp(req), userAgent: req.get('user-agent') });
