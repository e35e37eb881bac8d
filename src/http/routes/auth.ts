/**
 * /auth routes (DESIGN.md §6): each one is validate → (authenticate) → one verb of src/auth → present.
 * Rate limits, lockout and auditing live in the verbs, so the CLI and any other transport get them too.
 */
import type { Request, Response, Router } from 'express';
import * as mfa from '../../auth/mfa.js';
import { requestPasswordReset, resetPassword } from '../../auth/password-reset.js';
import * as schema from '../../auth/schema.js';
import * as auth from '../../auth/service.js';
import type { AuthInfo } from '../../auth/session-guard.js';
import type { AppContext } from '../../context.js';
import { authOf, bearerToken, requireAuth } from '../middleware/authenticate.js';
import { requestMeta as meta, param } from '../request.js';
import { parse } from '../validate.js';

export function authRoutes(router: Router, ctx: AppContext): void {
  const authed = requireAuth(ctx);

  router.post('/auth/register', async (req: Request, res: Response) => {
    const body = parse(schema.registerBody, req.body);
    res.status(201).json(await auth.register(ctx, body, meta(req)));
  });

  router.post('/auth/login', async (req: Request, res: Response) => {
    const body = parse(schema.loginBody, req.body);
    res.status(200).json(await auth.login(ctx, body, meta(req)));
  });

  router.post('/auth/refresh', async (req: Request, res: Response) => {
    const body = parse(schema.refreshBody, req.body);
    res.status(200).json(await auth.refresh(ctx, body.refresh_token, meta(req)));
  });

  router.post('/auth/logout', async (req: Request, res: Response) => {
    const body = parse(schema.logoutBody, req.body);
    // The access token may have expired; a refresh token alone still ends its session.
    let who: AuthInfo | undefined;
    try {
      who = await ctx.sessions.authenticate(bearerToken(req));
    } catch (e) {
      if (!body.refresh_token) throw e;
    }
    await auth.logout(ctx, { auth: who, refreshToken: body.refresh_token }, meta(req));
    res.status(204).end();
  });

  router.get('/auth/sessions', authed, async (req: Request, res: Response) => {
    res.json(await auth.listSessions(ctx, authOf(req)));
  });

  router.delete('/auth/sessions', authed, async (req: Request, res: Response) => {
    await auth.logoutAll(ctx, authOf(req), meta(req));
    res.status(204).end();
  });

  router.delete('/auth/sessions/:id', authed, async (req: Request, res: Response) => {
    const { id } = parse(schema.sessionParams, { id: param(req, 'id') });
    await auth.logoutSession(ctx, authOf(req), id, meta(req));
    res.status(204).end();
  });

  router.get('/auth/me', authed, async (req: Request, res: Response) => {
    res.json(await auth.getMe(ctx, authOf(req)));
  });

  router.patch('/auth/me', authed, async (req: Request, res: Response) => {
    const body = parse(schema.updateMeBody, req.body);
    res.json(await auth.updateMe(ctx, authOf(req), body, meta(req)));
  });

  router.post('/auth/me/password', authed, async (req: Request, res: Response) => {
    const body = parse(schema.changePasswordBody, req.body);
    await auth.changePassword(ctx, authOf(req), body, meta(req));
    res.status(204).end();
  });

  router.post('/auth/mfa/setup', authed, async (req: Request, res: Response) => {
    const body = parse(schema.mfaSetupBody, req.body);
    res.json(await mfa.setupMfa(ctx, authOf(req), body.password));
  });

  router.post('/auth/mfa/verify', authed, async (req: Request, res: Response) => {
    const body = parse(schema.mfaVerifyBody, req.body);
    res.json(await mfa.verifyMfa(ctx, authOf(req), body.code, meta(req)));
  });

  router.post('/auth/mfa/disable', authed, async (req: Request, res: Response) => {
    const body = parse(schema.mfaConfirmBody, req.body);
    await mfa.disableMfa(ctx, authOf(req), body.password, body.code, meta(req));
    res.status(204).end();
  });

  router.post('/auth/mfa/backup-codes', authed, async (req: Request, res: Response) => {
    const body = parse(schema.mfaConfirmBody, req.body);
    res.json(await mfa.regenerateBackupCodes(ctx, authOf(req), body.password, body.code, meta(req)));
  });

  router.post('/auth/forgot-password', async (req: Request, res: Response) => {
    const body = parse(schema.forgotPasswordBody, req.body);
    await requestPasswordReset(ctx, body.username, meta(req));
    res.status(202).end();
  });

  router.post('/auth/reset-password', async (req: Request, res: Response) => {
    const body = parse(schema.resetPasswordBody, req.body);
    await resetPassword(ctx, body, meta(req));
    res.status(204).end();
  });
}
