/**
 * A real `ws` client for gateway tests: connects with the access_token subprotocol, buffers every
 * frame, and lets a test wait for a frame matching a predicate (and later assert that some frame
 * never came, after a barrier event, never by sleeping).
 */
import WebSocket from 'ws';

export interface Frame {
  type: string;
  seq?: number;
  data?: any;
  request_id?: string | null;
  ok?: boolean;
  error?: { code: string; message: string };
}

export interface ConnectOptions {
  /** Subprotocols to offer; default `['access_token.' + token, 'access_token']`. */
  protocols?: string[];
  headers?: Record<string, string>;
  /** Appended to the URL (e.g. `?access_token=…`). */
  query?: string;
  origin?: string;
}

export function protocolsFor(token: string): string[] {
  return [`access_token.${token}`, 'access_token'];
}

export class GatewayClient {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: { pred: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];
  #counter = 0;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const frame = JSON.parse(data.toString()) as Frame;
      this.frames.push(frame);
      const i = this.#waiters.findIndex((w) => w.pred(frame));
      if (i >= 0) {
        const [w] = this.#waiters.splice(i, 1);
        w?.resolve(frame);
      }
    });
  }

  /** Opens a socket (rejects with the HTTP status when the upgrade is refused). */
  static connect(wsUrl: string, token: string | undefined, opts: ConnectOptions = {}): Promise<GatewayClient> {
    const protocols = opts.protocols ?? (token ? protocolsFor(token) : []);
    const ws = new WebSocket(wsUrl + (opts.query ?? ''), protocols, {
      headers: opts.headers,
      ...(opts.origin ? { origin: opts.origin } : {}),
    });
    const client = new GatewayClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () => {
          reject(Object.assign(new Error(`upgrade refused ${res.statusCode}`), { status: res.statusCode, body }));
          ws.terminate();
        });
      });
      ws.once('error', reject);
    });
  }

  /** Connects and waits for `ready`. */
  static async ready(wsUrl: string, token: string, opts: ConnectOptions = {}) {
    const client = await GatewayClient.connect(wsUrl, token, opts);
    const ready = await client.next((f) => f.type === 'ready');
    return { client, ready };
  }

  /** The first buffered or future frame matching `pred`. */
  next(pred: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const found = this.frames.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        reject(new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-5))}`));
      }, timeoutMs);
      const done = (f: Frame) => {
        clearTimeout(timer);
        resolve(f);
      };
      this.#waiters.push({ pred, resolve: done });
    });
  }

  /** Next event of `type` (optionally matching data). */
  event(type: string, match: (data: any) => boolean = () => true, timeoutMs?: number) {
    return this.next((f) => f.type === type && match(f.data), timeoutMs);
  }

  events(type: string): Frame[] {
    return this.frames.filter((f) => f.type === type);
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
  }

  /** Sends an op with a request_id and waits for its reply. */
  async request(type: string, data?: unknown): Promise<Frame> {
    const request_id = `r${++this.#counter}-${Math.random().toString(36).slice(2)}`;
    this.send(data === undefined ? { type, request_id } : { type, request_id, data });
    return this.next((f) => f.type === 'reply' && f.request_id === request_id);
  }

  close(): void {
    this.ws.close();
  }
}

/** The HTTP status of a refused upgrade (fails the test if a socket opens). */
export async function refusedStatus(wsUrl: string, token: string | undefined, opts: ConnectOptions = {}) {
  try {
    const c = await GatewayClient.connect(wsUrl, token, opts);
    c.ws.terminate();
  } catch (e) {
    const err = e as { status?: number; body?: string };
    if (err.status) return { status: err.status, body: err.body ? JSON.parse(err.body) : undefined };
    throw e;
  }
  throw new Error('the upgrade was accepted');
}
