/** HTTP routes for voice: the ICE servers (STUN, and TURN with short-lived coturn REST credentials). */
import type { Request, Response, Router } from 'express';
import type { AppContext } from '../../context.js';
import { iceServersFor } from '../../voice/ice-servers.js';
import { authOf, requireAuth } from '../middleware/authenticate.js';

export function voiceRoutes(router: Router, ctx: AppContext): void {
  router.get('/api/voice/ice-servers', requireAuth(ctx), (req: Request, res: Response) => {
    res.json(iceServersFor(ctx.config, authOf(req).userId));
  });
}
