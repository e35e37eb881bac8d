/** HTTP routes for guild channels and their per-role permission overrides. */
import type { Request, Response, Router } from 'express';
import type { AppContext } from '../../app/context.js';
import * as channels from '../../channels/service.js';
import * as schema from '../../guilds/schema.js';
import { handler } from '../handler.js';
import { authOf, requireAuth } from '../middleware/authenticate.js';
import { parse } from '../validate.js';
import { actorOf } from './guilds.js';

const p = (req: Request, name: string): string => String(req.params[name] ?? '');

export function channelRoutes(router: Router, ctx: AppContext): void {
  const auth = requireAuth(ctx);

  router.get(
    '/api/guilds/:id/channels',
    auth,
    handler(async (req: Request, res: Response) => {
      res.json(await channels.listChannels(ctx, actorOf(req), p(req, 'id')));
    }),
  );
  router.post(
    '/api/guilds/:id/channels',
    auth,
    handler(async (req: Request, res: Response) => {
      res
        .status(201)
        .json(await channels.createChannel(ctx, actorOf(req), p(req, 'id'), parse(schema.channelCreate, req.body)));
    }),
  );
  router.get(
    '/api/channels/:id',
    auth,
    handler(async (req: Request, res: Response) => {
      res.json(await channels.getChannel(ctx, { userId: authOf(req).userId }, p(req, 'id')));
    }),
  );
  router.patch(
    '/api/channels/:id',
    auth,
    handler(async (req: Request, res: Response) => {
      res.json(await channels.updateChannel(ctx, actorOf(req), p(req, 'id'), parse(schema.channelUpdate, req.body)));
    }),
  );
  router.delete(
    '/api/channels/:id',
    auth,
    handler(async (req: Request, res: Response) => {
      await channels.deleteChannel(ctx, actorOf(req), p(req, 'id'));
      res.status(204).end();
    }),
  );
  router.put(
    '/api/channels/:id/overrides/:role_id',
    auth,
    handler(async (req: Request, res: Response) => {
      res.json(
        await channels.setOverride(
          ctx,
          actorOf(req),
          p(req, 'id'),
          p(req, 'role_id'),
          parse(schema.overrideBody, req.body),
        ),
      );
    }),
  );
  router.delete(
    '/api/channels/:id/overrides/:role_id',
    auth,
    handler(async (req: Request, res: Response) => {
      await channels.deleteOverride(ctx, actorOf(req), p(req, 'id'), p(req, 'role_id'));
      res.status(204).end();
    }),
  );
}
