/**
 * `npm run bench:gateway`: gateway fan-out and idle footprint, with a bare uWS publish loop measured
 * in the same run as the ceiling. The server runs as a child process (test/support/node-process.ts)
 * on a fresh SQLite database; every client is a real `ws` client in this process, authenticated with
 * the access_token subprotocol. Rate limits are raised with VOICECHAT_RATE_LIMIT_SCALE, never removed.
 *
 * Posting path: POST /api/channels/:id/messages when the server has it (send → receipt latency is
 * measured from the request); otherwise the message is published on the server's event bus through
 * the node's IPC hook — exactly what the REST route does after its commit — and the report says so.
 *
 * Env: BENCH_IDLE (default "0,1000,10000"), BENCH_FANOUT (default "200x200,1000x1000"),
 * BENCH_NODE_FLAGS (extra node flags for the server process).
 */
import { execFileSync, execSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { EVERYONE_DEFAULT } from '../src/access/permissions.js';
import { signAccessToken } from '../src/auth/tokens.js';
import { Keyring } from '../src/crypto/keyring.js';
import { hashToken } from '../src/crypto/random.js';
import { newId, nowMs } from '../src/ids.js';
import { createTestDatabase, type TestDatabase } from '../test/support/db.js';
import { type NodeProcess, startNodeProcess } from '../test/support/nodes.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');

/**
 * Compiles the project (src, test support, bench) with tsc into a temp dir, so the measured server
 * runs as it does in production — plain node on compiled JS, without tsx's loader thread (which alone
 * adds tens of MB of RSS).
 */
function buildForBench(): string {
  const out = mkdtempSync(path.join(os.tmpdir(), 'vc-bench-build-'));
  execFileSync(
    process.execPath,
    [
      path.join(root, 'node_modules/typescript/bin/tsc'),
      '-p',
      path.join(root, 'tsconfig.json'),
      '--outDir',
      out,
      '--sourceMap',
      'false',
    ],
    { stdio: 'inherit' },
  );
  symlinkSync(path.join(root, 'node_modules'), path.join(out, 'node_modules'));
  return out;
}
const IDLE = (process.env.BENCH_IDLE ?? '0,1000,10000').split(',').map(Number);
const FANOUT = (process.env.BENCH_FANOUT ?? '200x200,1000x1000').split(',').map((s) => s.split('x').map(Number)) as [
  number,
  number,
][];
const USERS = Math.max(...IDLE, ...FANOUT.map(([c]) => c), 1);

interface Fixture {
  database: TestDatabase;
  keyringFile: string;
  channelId: string;
  tokens: string[];
}

async function setup(): Promise<Fixture> {
  const database = await createTestDatabase({ dialect: 'sqlite' });
  const keyring = Keyring.generate();
  const keyringFile = path.join(database.dir, 'keys.json');
  keyring.save(keyringFile);
  const { db } = database;
  const now = nowMs();
  const userIds = Array.from({ length: USERS }, () => newId());
  const sessionIds = userIds.map(() => newId());
  for (let i = 0; i < USERS; i += 500) {
    const ids = userIds.slice(i, i + 500);
    await db('users').insert(
      ids.map((id, j) => ({
        id,
        username: `bench_${i + j}`,
        password_hash: 'x',
        created_at: now,
        updated_at: now,
      })),
    );
    await db('sessions').insert(
      ids.map((id, j) => ({
        id: sessionIds[i + j],
        family_id: sessionIds[i + j],
        user_id: id,
        token_hash: hashToken(`bench-${i + j}-${now}`),
        created_at: now,
        expires_at: now + 86400_000,
      })),
    );
  }
  const guildId = newId();
  const channelId = newId();
  await db('guilds').insert({ id: guildId, name: 'bench', owner_id: userIds[0], created_at: now, updated_at: now });
  await db('roles').insert({
    id: newId(),
    guild_id: guildId,
    name: '@everyone',
    permissions: EVERYONE_DEFAULT.toString(),
    position: 0,
    is_everyone: true,
    created_at: now,
  });
  await db('channels').insert({
    id: channelId,
    guild_id: guildId,
    type: 'text',
    name: 'general',
    position: 0,
    created_at: now,
    updated_at: now,
  });
  for (let i = 0; i < USERS; i += 500) {
    await db('guild_members').insert(
      userIds.slice(i, i + 500).map((user_id) => ({ guild_id: guildId, user_id, joined_at: now })),
    );
  }
  const tokens = userIds.map((userId, i) =>
    signAccessToken(keyring, { userId, sessionId: sessionIds[i] as string }, 3600),
  );
  return { database, keyringFile, channelId, tokens };
}

/** Opens `n` authenticated sockets (bounded concurrency) and waits for each `ready`. */
async function connect(node: NodeProcess, tokens: string[], onMessage?: (data: Buffer) => void) {
  const sockets: WebSocket[] = [];
  let next = 0;
  async function worker() {
    while (next < tokens.length) {
      const token = tokens[next++] as string;
      const ws = new WebSocket(node.wsUrl, [`access_token.${token}`, 'access_token'], {
        perMessageDeflate: false,
        skipUTF8Validation: true,
      });
      await new Promise<void>((resolve, reject) => {
        ws.once('message', () => resolve());
        ws.once('error', reject);
        ws.once('unexpected-response', (_q, r) => reject(new Error(`upgrade refused ${r.statusCode}`)));
      });
      if (onMessage) ws.on('message', onMessage);
      sockets.push(ws);
    }
  }
  await Promise.all(Array.from({ length: 50 }, worker));
  return sockets;
}

async function closeAll(sockets: WebSocket[]) {
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === ws.CLOSED) return resolve();
          ws.once('close', () => resolve());
          ws.close();
        }),
    ),
  );
}

const pct = (sorted: Float64Array, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
/** The message index: `data.n` on the bus path, `n=<i>` in the content on the REST path. */
const N_RE = /"n":(\d+)|n=(\d+)/;

interface FanoutResult {
  target: string;
  mode: string;
  clients: number;
  messages: number;
  expected: number;
  delivered: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  deliveries_per_s: number;
}

/**
 * `messages` events to `clients` sockets. mode `paced`: one message at a time, each posted when the
 * previous one was published (REST: when its response arrived) — latency is send → receipt;
 * mode `burst`: every message published in one server-side loop — deliveries/s.
 */
async function fanout(
  node: NodeProcess,
  fx: Fixture,
  target: string,
  clients: number,
  messages: number,
  mode: 'latency' | 'stream' | 'burst',
  rest: boolean,
): Promise<FanoutResult> {
  const sentAt = new Float64Array(messages);
  const latencies = new Float64Array(clients * messages);
  let delivered = 0;
  let lastAt = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => {
    done = r;
  });
  const expected = clients * messages;
  // closed loop: per-message receipt counts, and a waiter for "message n reached every client"
  const receipts = new Uint32Array(messages);
  let waitingFor = -1;
  let allReceived: () => void = () => {};
  const sockets = await connect(node, fx.tokens.slice(0, clients), (data) => {
    const m = N_RE.exec(data.toString('latin1'));
    if (!m) return;
    const n = Number(m[1] ?? m[2]);
    const now = performance.now();
    latencies[delivered++] = now - (sentAt[n] as number);
    lastAt = now;
    if (++(receipts[n] as number) === clients && n === waitingFor) allReceived();
    if (delivered === expected) done();
  });
  const message = {
    kind: 'dispatch' as const,
    topic: `channel:${fx.channelId}`,
    type: 'message_new',
    data: {
      id: newId(),
      channel_id: fx.channelId,
      author_id: newId(),
      content: 'benchmark message with a realistic length of text in it',
      encrypted: false,
      nonce: null,
      reply_to: null,
      attachments: [],
      created_at: new Date().toISOString(),
      edited_at: null,
      deleted_at: null,
    },
  };
  const started = performance.now();
  if (mode === 'burst') {
    sentAt.fill(started);
    node.burst(message, messages);
  } else if (mode === 'latency') {
    // one message in flight end to end: the next is sent when the previous reached every client
    for (let n = 0; n < messages; n++) {
      const reached = new Promise<void>((r) => {
        waitingFor = n;
        allReceived = r;
      });
      sentAt[n] = performance.now();
      if (rest) await postRest(node, fx, n);
      else node.publish({ ...message, data: { ...message.data, n } });
      await reached;
    }
  } else if (rest) {
    for (let n = 0; n < messages; n++) {
      sentAt[n] = performance.now();
      await postRest(node, fx, n);
    }
  } else {
    for (let n = 0; n < messages; n++) {
      sentAt[n] = performance.now();
      // one post in flight (IPC round trip), like a sequential REST poster; delivery not awaited
      await node.publishAcked({ ...message, data: { ...message.data, n } });
    }
  }
  await Promise.race([finished, new Promise((r) => setTimeout(r, 60_000))]);
  const seconds = (lastAt - started) / 1000;
  const sorted = latencies.subarray(0, delivered).sort();
  await closeAll(sockets);
  return {
    target,
    mode: mode === 'burst' ? 'burst' : `${mode}-${rest ? 'rest' : 'bus'}`,
    clients,
    messages,
    expected,
    delivered,
    p50_ms: +pct(sorted, 0.5).toFixed(2),
    p99_ms: +pct(sorted, 0.99).toFixed(2),
    max_ms: +(sorted[sorted.length - 1] ?? NaN).toFixed(2),
    deliveries_per_s: Math.round(delivered / seconds),
  };
}

async function postRest(node: NodeProcess, fx: Fixture, n: number): Promise<void> {
  const res = await fetch(`${node.url}/api/channels/${fx.channelId}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${fx.tokens[0]}`, 'content-type': 'application/json' },
    body: JSON.stringify({ content: `bench n=${n}` }),
  });
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`POST message ${res.status}`);
}

async function hasRestMessages(node: NodeProcess, fx: Fixture): Promise<boolean> {
  const res = await fetch(`${node.url}/api/channels/${fx.channelId}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${fx.tokens[0]}`, 'content-type': 'application/json' },
    body: JSON.stringify({ content: 'probe' }),
  });
  await res.arrayBuffer();
  return res.status === 201;
}

async function main() {
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  console.log(
    `machine: ${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`,
  );
  try {
    console.log(`ulimit -n: ${execSync('ulimit -n', { shell: '/bin/bash' }).toString().trim()}`);
  } catch {}
  const build = buildForBench();
  const serverScript = path.join(build, 'test/support/node-process.js');
  const bareScript = path.join(build, 'bench/bare-uws.js');
  const fx = await setup();
  const env = {
    VOICECHAT_DATA_DIR: fx.database.dir,
    VOICECHAT_DATABASE_URL: '',
    VOICECHAT_KEYRING: fx.keyringFile,
    VOICECHAT_LOG_LEVEL: 'warn',
    VOICECHAT_RATE_LIMIT_SCALE: '2000',
    // Extra node flags for the server process, e.g. BENCH_NODE_FLAGS=--max-semi-space-size=2
    NODE_FLAGS: process.env.BENCH_NODE_FLAGS ?? '',
  };
  const results: FanoutResult[] = [];
  const idle: Record<string, number | null>[] = [];
  try {
    // Idle footprint on a fresh server process (nothing in its replay buffer or heap from fan-out).
    const idleServer = await startNodeProcess(env, serverScript);
    try {
      let base = 0;
      for (const n of IDLE) {
        const sockets = await connect(idleServer, fx.tokens.slice(0, n));
        await new Promise((r) => setTimeout(r, 2000));
        const { rss, connections, heapUsed, heapTotal, external } = await idleServer.stats();
        if (n === 0) base = rss;
        const row = {
          connections,
          rss_mb: +(rss / 2 ** 20).toFixed(1),
          heap_used_mb: +(heapUsed / 2 ** 20).toFixed(1),
          heap_total_mb: +(heapTotal / 2 ** 20).toFixed(1),
          external_mb: +(external / 2 ** 20).toFixed(1),
          bytes_per_connection: n === 0 ? null : Math.round((rss - base) / n),
        };
        idle.push(row);
        console.log(JSON.stringify({ idle: row }));
        await closeAll(sockets);
      }
    } finally {
      await idleServer.stop();
    }

    const server = await startNodeProcess(env, serverScript);
    const bare = await startNodeProcess({}, bareScript);
    try {
      const rest = await hasRestMessages(server, fx);
      console.log(
        `posting path: ${rest ? 'REST POST /api/channels/:id/messages' : 'event bus via the node IPC hook (REST message route not on this branch yet)'}`,
      );
      let restPost: { p50_ms: number; p99_ms: number } | undefined;
      if (rest) {
        // The REST POST alone (auth, permission check, committed INSERT, publish), no sockets open.
        const times = new Float64Array(300);
        for (let n = 0; n < times.length; n++) {
          const t0 = performance.now();
          await postRest(server, fx, 1_000_000 + n);
          times[n] = performance.now() - t0;
        }
        times.sort();
        restPost = { p50_ms: +pct(times, 0.5).toFixed(2), p99_ms: +pct(times, 0.99).toFixed(2) };
        console.log(JSON.stringify({ rest_post_round_trip: restPost }));
      }
      // Warm-up (JIT on both sides), discarded.
      await fanout(server, fx, 'voicechat', 200, 100, 'burst', rest);
      await fanout(bare, fx, 'bare-uws', 200, 100, 'burst', false);
      for (const [clients, messages] of FANOUT) {
        for (const r of [
          await fanout(bare, fx, 'bare-uws', clients, messages, 'latency', false),
          await fanout(server, fx, 'voicechat', clients, messages, 'latency', false),
          ...(rest ? [await fanout(server, fx, 'voicechat', clients, messages, 'latency', true)] : []),
          await fanout(bare, fx, 'bare-uws', clients, messages, 'stream', false),
          await fanout(server, fx, 'voicechat', clients, messages, 'stream', false),
          ...(rest ? [await fanout(server, fx, 'voicechat', clients, messages, 'stream', true)] : []),
        ]) {
          results.push(r);
          console.log(JSON.stringify(r));
        }
        // Bursts are dominated by the (single) client process: alternate three of each, keep the median.
        const bursts: Record<string, FanoutResult[]> = { 'bare-uws': [], voicechat: [] };
        for (let i = 0; i < 3; i++) {
          bursts['bare-uws']?.push(await fanout(bare, fx, 'bare-uws', clients, messages, 'burst', false));
          bursts.voicechat?.push(await fanout(server, fx, 'voicechat', clients, messages, 'burst', rest));
        }
        for (const runs of Object.values(bursts)) {
          const sorted = [...runs].sort((x, y) => x.deliveries_per_s - y.deliveries_per_s);
          const median = { ...(sorted[1] as FanoutResult), mode: 'burst (median of 3)' };
          results.push(median);
          console.log(JSON.stringify({ ...median, all_runs_per_s: runs.map((r) => r.deliveries_per_s) }));
        }
      }
    } finally {
      await Promise.all([server.stop(), bare.stop()]);
    }
  } finally {
    await fx.database.drop();
    rmSync(build, { recursive: true, force: true });
  }
  console.log('\nfan-out');
  console.table(results);
  for (const [clients, messages] of FANOUT) {
    const ours = results.find((r) => r.target === 'voicechat' && r.mode.startsWith('burst') && r.clients === clients);
    const ceiling = results.find((r) => r.target === 'bare-uws' && r.mode.startsWith('burst') && r.clients === clients);
    if (ours && ceiling)
      console.log(
        `${clients}×${messages}: burst ${ours.deliveries_per_s}/s vs bare uWS ${ceiling.deliveries_per_s}/s = ${Math.round((100 * ours.deliveries_per_s) / ceiling.deliveries_per_s)}% of the ceiling`,
      );
  }
  console.log('\nidle footprint');
  console.table(idle);
  console.log(JSON.stringify({ fanout: results, idle }));
}

await main();
