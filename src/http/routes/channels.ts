/** HTTP routes for guild channels and their per-role permission overrides. */
import type { Request, Response, Router } from 'express';
import * as schema from '../../channels/schema.js';
import * as channels from '../../channels/service.js';
import type { AppContext } from '../../context.js';
import { requireAuth } from '../middleware/authenticate.js';
import { actorOf, param as p } from '../request.js';
import { parse } from '../validate.js';

export function channelRoutes(router: Router, ctx: AppContext): void {
  const auth = requireAuth(ctx);

  router.get('/api/guilds/:id/channels', auth, async (req: Request, res: Response) => {
    res.json(await channels.listChannels(ctx, actorOf(req), p(req, 'id')));
  });
  router.post('/api/guilds/:id/channels', auth, async (req: Request, res: Response) => {
    const body = parse(schema.channelCreate, req.body);
    res.status(201).json(await channels.createChannel(ctx, actorOf(req), p(req, 'id'), body));
  });
  router.get('/api/channels/:id', auth, async (req: Request, res: Response) => {
    res.json(await channels.getChannel(ctx, actorOf(req), p(req, 'id')));
  });
  router.patch('/api/channels/:id', auth, async (req: Request, res: Response) => {
    const body = parse(schema.channelUpdate, req.body);
    res.json(await channels.updateChannel(ctx, actorOf(req), p(req, 'id'), body));
  });
  router.delete('/api/channels/:id', auth, async (req: Request, res: Response) => {
    await channels.deleteChannel(ctx, actorOf(req), p(req, 'id'));
    res.status(204).end();
  });
  router.put('/api/channels/:id/overrides/:role_id', auth, async (req: Request, res: Response) => {
    const body = parse(schema.overrideBody, req.body);
    res.json(await channels.setOverride(ctx, actorOf(req), p(req, 'id'), p(req, 'role_id'), body));
  });
  router.delete('/api/channels/:id/overrides/:role_id', auth, async (req: Request, res: Response) => {
    await channels.deleteOverride(ctx, actorOf(req), p(req, 'id'), p(req, 'role_id'));
    res.status(204).end();
  });
}
