/** HTTP routes for guilds, members, bans, roles, member roles, invites and the guild audit log. */
import type { Request, Response, Router } from 'express';
import type { AppContext } from '../../context.js';
import * as schema from '../../guilds/schema.js';
import * as guilds from '../../guilds/service.js';
import { requireAuth } from '../middleware/authenticate.js';
import { actorOf, param as p } from '../request.js';
import { parse } from '../validate.js';

export function guildRoutes(router: Router, ctx: AppContext): void {
  const auth = requireAuth(ctx);

  router.get('/api/guilds', auth, async (req: Request, res: Response) => {
    res.json(await guilds.listGuilds(ctx, actorOf(req)));
  });
  router.post('/api/guilds', auth, async (req: Request, res: Response) => {
    res.status(201).json(await guilds.createGuild(ctx, actorOf(req), parse(schema.guildCreate, req.body)));
  });
  router.get('/api/guilds/:id', auth, async (req: Request, res: Response) => {
    res.json(await guilds.getGuild(ctx, actorOf(req), p(req, 'id')));
  });
  router.patch('/api/guilds/:id', auth, async (req: Request, res: Response) => {
    res.json(await guilds.updateGuild(ctx, actorOf(req), p(req, 'id'), parse(schema.guildUpdate, req.body)));
  });
  router.delete('/api/guilds/:id', auth, async (req: Request, res: Response) => {
    await guilds.deleteGuild(ctx, actorOf(req), p(req, 'id'));
    res.status(204).end();
  });
  router.post('/api/guilds/:id/leave', auth, async (req: Request, res: Response) => {
    await guilds.leaveGuild(ctx, actorOf(req), p(req, 'id'));
    res.status(204).end();
  });

  router.get('/api/guilds/:id/members', auth, async (req: Request, res: Response) => {
    res.json(await guilds.listMembers(ctx, actorOf(req), p(req, 'id'), parse(schema.userPageQuery, req.query)));
  });
  router.delete('/api/guilds/:id/members/:user_id', auth, async (req: Request, res: Response) => {
    await guilds.kickMember(ctx, actorOf(req), p(req, 'id'), p(req, 'user_id'));
    res.status(204).end();
  });
  router.put('/api/guilds/:id/members/:user_id/roles/:role_id', auth, async (req: Request, res: Response) => {
    await guilds.addMemberRole(ctx, actorOf(req), p(req, 'id'), p(req, 'user_id'), p(req, 'role_id'));
    res.status(204).end();
  });
  router.delete('/api/guilds/:id/members/:user_id/roles/:role_id', auth, async (req: Request, res: Response) => {
    await guilds.removeMemberRole(ctx, actorOf(req), p(req, 'id'), p(req, 'user_id'), p(req, 'role_id'));
    res.status(204).end();
  });

  router.get('/api/guilds/:id/bans', auth, async (req: Request, res: Response) => {
    res.json(await guilds.listBans(ctx, actorOf(req), p(req, 'id'), parse(schema.userPageQuery, req.query)));
  });
  router.put('/api/guilds/:id/bans/:user_id', auth, async (req: Request, res: Response) => {
    const body = parse(schema.banBody, req.body);
    await guilds.banMember(ctx, actorOf(req), p(req, 'id'), p(req, 'user_id'), body?.reason);
    res.status(204).end();
  });
  router.delete('/api/guilds/:id/bans/:user_id', auth, async (req: Request, res: Response) => {
    await guilds.unbanMember(ctx, actorOf(req), p(req, 'id'), p(req, 'user_id'));
    res.status(204).end();
  });

  router.get('/api/guilds/:id/roles', auth, async (req: Request, res: Response) => {
    res.json(await guilds.listRoles(ctx, actorOf(req), p(req, 'id')));
  });
  router.post('/api/guilds/:id/roles', auth, async (req: Request, res: Response) => {
    res.status(201).json(await guilds.createRole(ctx, actorOf(req), p(req, 'id'), parse(schema.roleCreate, req.body)));
  });
  router.patch('/api/guilds/:id/roles/:role_id', auth, async (req: Request, res: Response) => {
    const body = parse(schema.roleUpdate, req.body);
    res.json(await guilds.updateRole(ctx, actorOf(req), p(req, 'id'), p(req, 'role_id'), body));
  });
  router.delete('/api/guilds/:id/roles/:role_id', auth, async (req: Request, res: Response) => {
    await guilds.deleteRole(ctx, actorOf(req), p(req, 'id'), p(req, 'role_id'));
    res.status(204).end();
  });

  router.get('/api/guilds/:id/invites', auth, async (req: Request, res: Response) => {
    res.json(await guilds.listInvites(ctx, actorOf(req), p(req, 'id')));
  });
  router.post('/api/guilds/:id/invites', auth, async (req: Request, res: Response) => {
    const body = parse(schema.inviteCreate, req.body);
    res.status(201).json(await guilds.createInvite(ctx, actorOf(req), p(req, 'id'), body));
  });
  router.delete('/api/guilds/:id/invites/:code', auth, async (req: Request, res: Response) => {
    await guilds.deleteInvite(ctx, actorOf(req), p(req, 'id'), p(req, 'code'));
    res.status(204).end();
  });
  router.post('/api/invites/:code/join', auth, async (req: Request, res: Response) => {
    res.json(await guilds.joinByInvite(ctx, actorOf(req), p(req, 'code')));
  });

  router.get('/api/guilds/:id/audit-log', auth, async (req: Request, res: Response) => {
    res.json(await guilds.guildAuditLog(ctx, actorOf(req), p(req, 'id'), parse(schema.pageQuery, req.query)));
  });
}
