/** HTTP routes for channel history, sending, editing and deleting messages. */
import type { Request, Response, Router } from 'express';
import type { AppContext } from '../../context.js';
import * as schema from '../../messages/schema.js';
import * as messages from '../../messages/service.js';
import { requireAuth } from '../middleware/authenticate.js';
import { actorOf, param as p } from '../request.js';
import { parse } from '../validate.js';

export function messageRoutes(router: Router, ctx: AppContext): void {
  const auth = requireAuth(ctx);

  router.get('/api/channels/:id/messages', auth, async (req: Request, res: Response) => {
    const page = parse(schema.historyQuery, req.query);
    res.json(await messages.listMessages(ctx, actorOf(req), p(req, 'id'), page));
  });
  router.post('/api/channels/:id/messages', auth, async (req: Request, res: Response) => {
    const body = parse(schema.messageCreate, req.body);
    res.status(201).json(await messages.createMessage(ctx, actorOf(req), p(req, 'id'), body));
  });
  router.patch('/api/messages/:id', auth, async (req: Request, res: Response) => {
    res.json(await messages.editMessage(ctx, actorOf(req), p(req, 'id'), parse(schema.messageEdit, req.body)));
  });
  router.delete('/api/messages/:id', auth, async (req: Request, res: Response) => {
    await messages.deleteMessage(ctx, actorOf(req), p(req, 'id'));
    res.status(204).end();
  });
}
