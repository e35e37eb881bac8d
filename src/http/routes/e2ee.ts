/** HTTP routes for DM channels, the device key directory, the to-device relay and Megolm sessions. */
import type { Request, Response, Router } from 'express';
import type { AppContext } from '../../context.js';
import { leaveDm, listDms, openDm } from '../../e2ee/dm.js';
import { claimKeys, countKeys, deleteDevice, uploadKeys, userKeys } from '../../e2ee/keys.js';
import { listMegolmSessions, storeMegolmSession } from '../../e2ee/megolm.js';
import * as schema from '../../e2ee/schema.js';
import { ackToDevice, pullToDevice, sendToDevice } from '../../e2ee/to-device.js';
import { errors } from '../../errors.js';
import { jsonBodySize } from '../json-body.js';
import { requireAuth } from '../middleware/authenticate.js';
import { actorOf, param as p } from '../request.js';
import { parse } from '../validate.js';

export function e2eeRoutes(router: Router, ctx: AppContext): void {
  const auth = requireAuth(ctx);

  // ---- DM channels
  router.post('/api/dm', auth, async (req: Request, res: Response) => {
    const body = parse(schema.dmCreate, req.body);
    const { dm, created } = await openDm(ctx, actorOf(req), body);
    res.status(created ? 201 : 200).json(dm);
  });
  router.get('/api/dm', auth, async (req: Request, res: Response) => {
    res.json(await listDms(ctx, actorOf(req)));
  });
  router.post('/api/dm/:id/leave', auth, async (req: Request, res: Response) => {
    await leaveDm(ctx, actorOf(req), p(req, 'id'));
    res.status(204).end();
  });

  // ---- device keys
  router.post('/api/keys/upload', auth, async (req: Request, res: Response) => {
    const body = parse(schema.keysUpload, req.body);
    res.json(await uploadKeys(ctx, actorOf(req), body));
  });
  router.get('/api/keys/count', auth, async (req: Request, res: Response) => {
    const { device_id } = parse(schema.deviceQuery, req.query);
    res.json(await countKeys(ctx, actorOf(req), device_id));
  });
  router.delete('/api/keys/devices/:device_id', auth, async (req: Request, res: Response) => {
    await deleteDevice(ctx, actorOf(req), p(req, 'device_id'));
    res.status(204).end();
  });
  router.get('/api/users/:id/keys', auth, async (req: Request, res: Response) => {
    res.json(await userKeys(ctx, actorOf(req), p(req, 'id')));
  });
  router.post('/api/users/:id/keys/claim', auth, async (req: Request, res: Response) => {
    const body = parse(schema.keysClaim, req.body);
    res.json(await claimKeys(ctx, actorOf(req), p(req, 'id'), body.device_id));
  });

  // ---- to-device relay
  router.post('/api/keys/to-device/ack', auth, async (req: Request, res: Response) => {
    const body = parse(schema.toDeviceAck, req.body);
    await ackToDevice(ctx, actorOf(req), body.ids);
    res.status(204).end();
  });
  router.post('/api/keys/to-device', auth, async (req: Request, res: Response) => {
    if (jsonBodySize(req) > schema.TO_DEVICE_BODY_LIMIT) {
      throw errors.payloadTooLarge('A to-device request carries at most 256 KiB.');
    }
    const body = parse(schema.toDeviceSend, req.body);
    res.json(await sendToDevice(ctx, actorOf(req), body));
  });
  router.get('/api/keys/to-device', auth, async (req: Request, res: Response) => {
    const q = parse(schema.toDevicePull, req.query);
    res.json(await pullToDevice(ctx, actorOf(req), q.device_id, q.limit));
  });

  // ---- Megolm session store
  router.post('/api/channels/:id/megolm-sessions', auth, async (req: Request, res: Response) => {
    const body = parse(schema.megolmSessionCreate, req.body);
    res.status(201).json(await storeMegolmSession(ctx, actorOf(req), p(req, 'id'), body));
  });
  router.get('/api/channels/:id/megolm-sessions', auth, async (req: Request, res: Response) => {
    res.json(await listMegolmSessions(ctx, actorOf(req), p(req, 'id')));
  });
}
