/**
 * The ceiling for bench/gateway.ts: a bare uWS app (same build, same settings that matter) whose
 * sockets all subscribe to one topic, publishing pre-built frames of the same size as ours. Speaks the
 * same IPC as test/support/node-process.ts (`listening`, `publish`, `burst`, `stats`, `stop`).
 */
import { uWS } from '../src/net/uws.js';

const app = uWS.App();
let connections = 0;
let seq = 0;
app.ws('/ws', {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 * 1024,
  maxBackpressure: 2 * 1024 * 1024,
  idleTimeout: 60,
  upgrade: (res, req, context) => {
    res.upgrade(
      {},
      req.getHeader('sec-websocket-key'),
      'access_token',
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  open: (ws) => {
    connections++;
    ws.subscribe('channel:bench');
    ws.send('{"type":"ready","seq":0,"data":{}}');
  },
  close: () => {
    connections--;
  },
});
app.listen('127.0.0.1', 0, (socket) => {
  if (!socket) process.exit(1);
  process.send?.({ type: 'listening', port: uWS.us_socket_local_port(socket) });
});

type Msg = { type: string; message?: { type: string; data: object }; count?: number; ack?: boolean };
const frame = (m: NonNullable<Msg['message']>, n: number) =>
  `{"type":${JSON.stringify(m.type)},"seq":${++seq},"data":${JSON.stringify({ ...m.data, n })}}`;
process.on('message', (m: Msg) => {
  if (m.type === 'publish' && m.message) {
    app.publish('channel:bench', frame(m.message, (m.message.data as { n: number }).n));
    if (m.ack) process.send?.({ type: 'ack' });
  }
  if (m.type === 'burst' && m.message) {
    for (let n = 0; n < (m.count ?? 0); n++) app.publish('channel:bench', frame(m.message, n));
  }
  if (m.type === 'stats') process.send?.({ type: 'stats', rss: process.memoryUsage().rss, connections });
  if (m.type === 'stop') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
