/**
 * The single import point of uWebSockets.js and ultimate-express (an Express-compatible router on
 * uWS). Also captures the listen socket so the server can stop listening (uWS 20.30 has no
 * App.close()).
 */

import type * as UWS from 'uWebSockets.js';
import { createRequire } from 'node:module';
import express from 'ultimate-express';

const require = createRequire(import.meta.url);
export const uWS: typeof UWS = require('uWebSockets.js');
export type {
  CompressOptions,
  HttpRequest,
  HttpResponse,
  TemplatedApp,
  us_listen_socket,
  us_socket_context_t,
  WebSocket,
  WebSocketBehavior,
} from 'uWebSockets.js';
export { express };

export type ExpressApp = ReturnType<typeof express>;

/** `LIBUS_LISTEN_EXCLUSIVE_PORT` (the typings declare it only as an enum member). */
const EXCLUSIVE_PORT: number =
  (uWS as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT?: number }).LIBUS_LISTEN_EXCLUSIVE_PORT ?? 1;

/** The uWS app under an ultimate-express app (one port for REST and the gateway). */
export const uwsAppOf = (app: ExpressApp): UWS.TemplatedApp => (app as unknown as { uwsApp: UWS.TemplatedApp }).uwsApp;

/**
 * Listens (exclusively: no other socket may share the port) and resolves with the bound port and a
 * function that closes the listen socket.
 */
export function listen(app: ExpressApp, host: string, port: number): Promise<{ port: number; close: () => void }> {
  const uwsApp = uwsAppOf(app);
  let listenSocket: UWS.us_listen_socket | false = false;
  const original = uwsApp.listen.bind(uwsApp) as (...args: unknown[]) => UWS.TemplatedApp;
  // ultimate-express calls listen(host, port, cb); we call it as listen(host, port, EXCLUSIVE, cb).
  // uWS's default sets SO_REUSEPORT, so a second server on the same port would start silently and
  // the kernel would split connections between the two.
  (uwsApp as unknown as { listen: (...args: unknown[]) => UWS.TemplatedApp }).listen = (...args: unknown[]) => {
    const cb = args[args.length - 1] as (s: unknown) => void;
    return original(...args.slice(0, -1), EXCLUSIVE_PORT, (socket: UWS.us_listen_socket | false) => {
      listenSocket = socket;
      if (socket) cb(socket);
    });
  };
  return new Promise((resolve, reject) => {
    try {
      app.listen(port, host, (boundPort: number) => {
        resolve({
          port: boundPort,
          close: () => {
            if (listenSocket) uWS.us_listen_socket_close(listenSocket);
            listenSocket = false;
          },
        });
      });
    } catch (e) {
      reject(e);
    }
    setImmediate(() => {
      if (!listenSocket) reject(new Error(`cannot listen on ${host}:${port} (address in use or no permission)`));
    });
  });
}
