/**
 * HTTP routes for attachments: the raw request body is handed to the upload service as a stream (the
 * JSON reader skips this route whatever the Content-Type, see `isRawUpload`; a JSON-typed upload is
 * refused with 415 by the service), with uWS-level backpressure so
 * a fast client cannot pile bytes up in memory while the disk catches up.
 */
import type { Request, Response, Router } from 'express';
import type { AppContext } from '../../context.js';
import { createUpload, openAttachment } from '../../uploads/service.js';
import { isJsonType } from '../json-body.js';
import { requireAuth } from '../middleware/authenticate.js';
import { actorOf, param } from '../request.js';

interface UwsFlow {
  pause?: () => void;
  resume?: () => void;
}

const UPLOAD_PATH = /^\/api\/channels\/[^/]+\/attachments\/?$/;

/** The upload route: its body is a raw stream that the JSON reader must leave alone. */
export const isRawUpload = (req: Request): boolean => req.method === 'POST' && UPLOAD_PATH.test(req.path);

export function uploadRoutes(router: Router, ctx: AppContext): void {
  const auth = requireAuth(ctx);

  router.post('/api/channels/:id/attachments', auth, async (req: Request, res: Response) => {
    // Backpressure down to the socket: while the disk lags, uWS stops reading. The socket must be
    // resumed when we are done whatever happened, or the next request on a kept-alive connection hangs.
    const uws = (req as unknown as { _res?: UwsFlow })._res;
    let paused = false;
    // Never on an aborted response: uWS throws on any access after onAborted.
    const aborted = () => Boolean((res as unknown as { aborted?: boolean }).aborted);
    const onPause = () => {
      if (!paused && uws?.pause && !aborted()) {
        paused = true;
        uws.pause();
      }
    };
    const onResume = () => {
      if (paused && uws?.resume && !aborted()) {
        paused = false;
        uws.resume();
      }
    };
    req.on('pause', onPause);
    req.on('resume', onResume);
    // A client that goes away mid-body (abort, reset, or silent for uWS's 10 s idle timeout) is only
    // reported on the response's socket; without this the body stream would wait forever and the
    // partial file would stay. Destroying the request fails the upload, which deletes the file.
    const socket = (res as unknown as { socket?: NodeJS.EventEmitter | null }).socket;
    const onAbort = (err: Error) => req.destroy(err);
    socket?.on('error', onAbort);
    const length = req.get('content-length');
    let attachment: Awaited<ReturnType<typeof createUpload>>;
    try {
      attachment = await createUpload(ctx, actorOf(req), param(req, 'id'), {
        filename: req.get('x-filename'),
        contentLength: length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined,
        body: req,
        jsonTyped: isJsonType(req.get('content-type')),
      });
    } catch (e) {
      // Nobody is left to answer (the file is already gone); touching the aborted response would throw.
      if (aborted()) {
        ctx.logger.debug({ err: e }, 'upload aborted by the client');
        return;
      }
      throw e;
    } finally {
      // Before any response: a uWS response may not be touched once it has ended.
      req.off('pause', onPause);
      req.off('resume', onResume);
      socket?.off('error', onAbort);
      onResume();
    }
    res.status(201).json(attachment);
  });

  router.get('/api/attachments/:id', auth, async (req: Request, res: Response) => {
    const download = await openAttachment(ctx, actorOf(req), param(req, 'id'));
    for (const [k, v] of Object.entries(download.headers)) res.setHeader(k, v);
    download.stream.on('error', (err) => {
      ctx.logger.warn({ err }, 'attachment read failed');
      res.destroy();
    });
    download.stream.pipe(res as unknown as NodeJS.WritableStream);
  });
}
