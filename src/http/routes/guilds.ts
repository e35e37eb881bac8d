/** HTTP routes for guilds, members, bans, roles, member roles, invites and the guild audit log. */
import type { Request, Response, Router } from 'express';
import type { AppContext } from '../../app/context.js';
import * as schema from '../../guilds/schema.js';
import * as guilds from '../../guilds/service.js';
import { clientIp } from '../app.js';
import { handler } from '../handler.js';
import { authOf, requireAuth } from '../middleware/authenticate.js';
import { parse } from '../validate.js';

export const actorOf = (req: Request): guilds.Actor => ({ userId: authOf(req).userId, ip: clientIp(req) });
const p = (req: Request, name: string): string => String(req.params[name] ?? '');

export function guildRoutes(router: Router, ctx: AppContext): void {
  const auth = requireAuth(ctx);

  router.get(
    '/api/guilds',
    auth,
    handler(async (req: Request, res: Response) => {
      res.json(await guilds.listGuilds(ctx, actorOf(req)));
    }),
  );
  router.post(
    '/api/guilds',
    auth,
    handler(async (req: Request, res: Response) => {
      res.status(201).json(await guilds.createGuild(ctx, actorOf(req), parse(schema.guildCreate, req.body)));
    }),
  );
  router.get(
    '/api/guilds/:id',
    auth,
    handler(async (req: Request, res: Response) => {
      res.json(await guilds.getGuild(ctx, actorOf(req), p(req, 'id')));
    }),
  );
  router.patch(
    '/api/guilds/:id',
    auth,
    handler(async (req: Request, res: Response) => {
      res.json(await guilds.updateGuild(ctx, actorOf(req), p(req, 'id'), parse(schema.guildUpdate, req.body)));
    }),
  );
  router.delete(
    '/api/guilds/:id',
    auth,
    handler(async (req: Request, res: Response) => {
      await guilds.deleteGuild(ctx, actorOf(req), p(req, 'id'));
      res.status(204).end();
    }),
  );
  router.post(
    '/api/guilds/:id/leave',
    auth,
    handler(async (req: Request, res: Response) => {
      await guilds.leaveGuild(ctx, actorOf(req), p(req, 'id'));
      res.status(204).end();
    }),
  );

  router.get(
    '/api/guilds/:id/members',
    auth,
    handler(async (req: Request, res: Response) => {
      res.json(await guilds.listMembers(ctx, actorOf(req), p(req, 'id')));
    }),
  );
  router.delete(
    '/api/guilds/:id/members/:user_id',
    auth,
    handler(async (req: Request, res: Response) => {
      await guilds.kickMember(ctx, actorOf(req), p(req, 'id'), p(req, 'user_id'));
      res.status(204).end();
    }),
  );
  router.put(
    '/api/guilds/:id/members/:user_id/roles/:role_id',
    auth,
    handler(async (req: Request, res: Response) => {
      await guilds.addMemberRole(ctx, actorOf(req), p(req, 'id'), p(req, 'user_id'), p(req, 'role_id'));
      res.status(204).end();
    }),
  );
  router.delete(
    '/api/guilds/:id/members/:user_id/roles/:role_id',
    auth,
    handler(async (req: Request, res: Response) => {
      await guilds.removeMemberRole(ctx, actorOf(req), p(req, 'id'), p(req, 'user_id'), p(req, 'role_id'));
      res.status(204).end();
    }),
  );

  router.get(
    '/api/guilds/:id/bans',
    auth,
    handler(async (req: Request, res: Response) => {
      res.json(await guilds.listBans(ctx, actorOf(req), p(req, 'id')));
    }),
  );
  router.put(
    '/api/guilds/:id/bans/:user_id',
    auth,
    handler(async (req: Request, res: Response) => {
      const body = parse(schema.banBody, req.body);
      await guilds.banMember(ctx, actorOf(req), p(req, 'id'), p(req, 'user_id'), body?.reason);
      res.status(204).end();
    }),
  );
  router.delete(
    '/api/guilds/:id/bans/:user_id',
    auth,
    handler(async (req: Request, res: Response) => {
      await guilds.unbanMember(ctx, actorOf(req), p(req, 'id'), p(req, 'user_id'));
      res.status(204).end();
    }),
  );

  router.get(
    '/api/guilds/:id/roles',
    auth,
    handler(async (req: Request, res: Response) => {
      res.json(await guilds.listRoles(ctx, actorOf(req), p(req, 'id')));
    }),
  );
  router.post(
    '/api/guilds/:id/roles',
    auth,
    handler(async (req: Request, res: Response) => {
      res
        .status(201)
        .json(await guilds.createRole(ctx, actorOf(req), p(req, 'id'), parse(schema.roleCreate, req.body)));
    }),
  );
  router.patch(
    '/api/guilds/:id/roles/:role_id',
    auth,
    handler(async (req: Request, res: Response) => {
      res.json(
        await guilds.updateRole(ctx, actorOf(req), p(req, 'id'), p(req, 'role_id'), parse(schema.roleUpdate, req.body)),
      );
    }),
  );
  router.delete(
    '/api/guilds/:id/roles/:role_id',
    auth,
    handler(async (req: Request, res: Response) => {
      await guilds.deleteRole(ctx, actorOf(req), p(req, 'id'), p(req, 'role_id'));
      res.status(204).end();
    }),
  );

  router.get(
    '/api/guilds/:id/invites',
    auth,
    handler(async (req: Request, res: Response) => {
      res.json(await guilds.listInvites(ctx, actorOf(req), p(req, 'id')));
    }),
  );
  router.post(
    '/api/guilds/:id/invites',
    auth,
    handler(async (req: Request, res: Response) => {
      res
        .status(201)
        .json(await guilds.createInvite(ctx, actorOf(req), p(req, 'id'), parse(schema.inviteCreate, req.body)));
    }),
  );
  router.delete(
    '/api/guilds/:id/invites/:code',
    auth,
    handler(async (req: Request, res: Response) => {
      await guilds.deleteInvite(ctx, actorOf(req), p(req, 'id'), p(req, 'code'));
      res.status(204).end();
    }),
  );
  router.post(
    '/api/invites/:code/join',
    auth,
    handler(async (req: Request, res: Response) => {
      res.json(await guilds.joinByInvite(ctx, actorOf(req), p(req, 'code')));
    }),
  );

  router.get(
    '/api/guilds/:id/audit-log',
    auth,
    handler(async (req: Request, res: Response) => {
      res.json(await guilds.guildAuditLog(ctx, actorOf(req), p(req, 'id'), parse(schema.pageQuery, req.query)));
    }),
  );
}
