/**
 * The HTTP transport: an ultimate-express app on uWebSockets.js. Order: security headers → JSON body
 * (1 MiB) → health/ops routes → feature routes → 404 → the one error mapper.
 */

import { BlockList, isIP } from 'node:net';
import type { NextFunction, Request, Response, Router } from 'express';
import helmet from 'helmet';
import type { AppContext } from '../context.js';
import { safeEqual } from '../crypto/random.js';
import { migrationStatus } from '../db/migrator.js';
import { errors } from '../errors.js';
import { normalizeIp } from '../net/ip.js';
import { type ExpressApp, express, uwsAppOf } from '../net/uws.js';
import { jsonBody } from './json-body.js';
import { errorHandler, notFoundHandler } from './middleware/errors.js';
import { isRawUpload } from './routes/uploads.js';
import { serveWebClient } from './static-web.js';

export const JSON_BODY_LIMIT = 1024 * 1024;

/** A feature's routes: registered on the app's router with the shared context. */
export type RouteModule = (router: Router, ctx: AppContext) => void;

export { normalizeIp };

/**
 * Loopback peers (127.0.0.0/8 and ::1), whatever their spelling: peers arrive canonicalised by
 * normalizeIp, which writes IPv6 in full (`0:0:0:0:0:0:0:1`), so a text comparison with '::1' misses.
 */
function loopbackCheck(): (ip: string) => boolean {
  const list = new BlockList();
  list.addSubnet('127.0.0.0', 8, 'ipv4');
  list.addAddress('::1', 'ipv6');
  return (ip) => {
    const family = isIP(ip);
    return family === 4 ? list.check(ip, 'ipv4') : family === 6 ? list.check(ip, 'ipv6') : false;
  };
}

export function createHttpApp(ctx: AppContext, modules: RouteModule[]): ExpressApp {
  const { config } = ctx;
  const tls = Boolean(config.tlsCert && config.tlsKey);
  const isLoopback = loopbackCheck();
  const app = express({
    threads: 0,
    uwsOptions: tls ? { cert_file_name: config.tlsCert, key_file_name: config.tlsKey } : {},
  });
  app.disable('x-powered-by');
  app.set('etag', false);
  // Without this ultimate-express rethrows a rejected async handler as an unhandled rejection and the
  // request never gets an answer; with it the rejection reaches the error mapper like a sync throw.
  // Routers read the setting through their parent once mounted, so feature routes are plain async
  // functions (no wrapper).
  app.set('catch async errors', true);
  if (config.trustedProxies.length > 0) app.set('trust proxy', config.trustedProxies);
  // The browser client, straight from uWS; it yields the API's prefixes to the router below.
  const webFiles = serveWebClient(uwsAppOf(app), {
    ...(config.webDir ? { root: config.webDir } : {}),
    tls,
    onServed: (method, status) => ctx.metrics.httpRequests.inc({ method, status: `${Math.floor(status / 100)}xx` }),
  });
  if (webFiles === 0) ctx.logger.warn('web client not built (no dist/web/index.html): run `npm run build`');

  app.use(
    helmet({
      contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
      frameguard: { action: 'deny' },
      referrerPolicy: { policy: 'no-referrer' },
      strictTransportSecurity: tls ? { maxAge: 31536000, includeSubDomains: true } : false,
      crossOriginResourcePolicy: { policy: 'same-origin' },
    }),
  );
  app.use((req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Cache-Control', 'no-store');
    const started = performance.now();
    res.on('finish', () => {
      ctx.metrics.httpRequests.inc({ method: req.method, status: `${Math.floor(res.statusCode / 100)}xx` });
      ctx.metrics.httpDuration.observe((performance.now() - started) / 1000);
    });
    next();
  });
  // Our own reader, not express.json(): see json-body.ts (cost, and raw uploads must stay streams).
  app.use(jsonBody(JSON_BODY_LIMIT, isRawUpload));

  app.get('/health', (_req: Request, res: Response) => {
    res.json({ status: 'ok' });
  });

  app.get('/ready', async (_req: Request, res: Response) => {
    try {
      const status = await migrationStatus(ctx.db);
      if (status.pending.length > 0) {
        res.status(503).json({ status: 'not_ready', reason: 'migrations pending', pending: status.pending });
        return;
      }
      // Voice being unavailable does not make the node unready (text chat works); it says why.
      res.json({ status: 'ready', voice: ctx.voice.status });
    } catch (err) {
      ctx.logger.warn({ err }, 'readiness check failed');
      res.status(503).json({ status: 'not_ready', reason: 'database unreachable' });
    }
  });

  app.get('/metrics', async (req: Request, res: Response) => {
    const peer = normalizeIp((req as unknown as { connection: { remoteAddress?: string } }).connection.remoteAddress);
    const auth = req.get('authorization') ?? '';
    const tokenOk = Boolean(config.metricsToken) && safeEqual(auth, `Bearer ${config.metricsToken}`);
    if (!tokenOk && !(isLoopback(peer) && !req.get('x-forwarded-for'))) throw errors.notFound('No such route.');
    res.setHeader('Content-Type', ctx.metrics.registry.contentType);
    res.send(await ctx.metrics.registry.metrics());
  });

  const router = express.Router();
  for (const register of modules) register(router as unknown as Router, ctx);
  app.use(router);

  app.use(notFoundHandler);
  app.use(errorHandler(ctx.logger));
  return app;
}
