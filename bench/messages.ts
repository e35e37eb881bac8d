/**
 * Message benchmark (`npm run bench:messages`): message-create throughput and latency over real HTTP
 * with 1, 16 and 64 concurrent senders, then history reads (`GET …/messages?limit=50`, random `before`
 * cursors) on a channel holding 100,000 messages, on SQLite and on Postgres. The server runs in a
 * child process; rate limits stay on, raised with VOICECHAT_RATE_LIMIT_SCALE. Prints a table and JSON.
 *
 * Options (env): BENCH_SECONDS (per step, default 5), BENCH_DIALECTS (default "sqlite,pg"),
 * BENCH_CONCURRENCY (default "1,16,64"),
 * BENCH_HISTORY (messages to seed, default 100000).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import argon2 from 'argon2';
import { signAccessToken } from '../src/auth/tokens.js';
import { Keyring } from '../src/crypto/keyring.js';
import { hashToken, randomToken } from '../src/crypto/random.js';
import type { Db } from '../src/db/knex.js';
import { newId, nowMs } from '../src/ids.js';
import { createTestDatabase, type TestDatabase } from '../test/support/db.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const DIALECTS = (process.env.BENCH_DIALECTS ?? 'sqlite,pg').split(',') as ('sqlite' | 'pg')[];
const HISTORY = Number(process.env.BENCH_HISTORY ?? 100_000);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,16,64').split(',').map(Number);

interface Result {
  /** Server CPU time (main + worker threads) per request, from /proc: comparable on a busy machine. */
  server_cpu_us_per_req?: number;
  dialect: string;
  test: string;
  concurrency: number;
  requests: number;
  errors: number;
  per_second: number;
  p50_ms: number;
  p99_ms: number;
}

async function insertUser(db: Db, keyring: Keyring, hash: string) {
  const id = newId();
  const now = nowMs();
  await db('users').insert({
    id,
    username: `bench_${id.slice(-12).replace(/-/g, '')}`,
    password_hash: hash,
    created_at: now,
    updated_at: now,
  });
  const sessionId = newId();
  await db('sessions').insert({
    id: sessionId,
    family_id: sessionId,
    user_id: id,
    token_hash: hashToken(randomToken()),
    created_at: now,
    last_used_at: now,
    expires_at: now + 86400_000,
  });
  return { id, token: signAccessToken(keyring, { userId: id, sessionId }, 3600) };
}

function startServer(database: TestDatabase, keyringFile: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    [
      ...(process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : []),
      '--import',
      'tsx',
      path.join(import.meta.dirname, 'server.ts'),
    ],
    {
      env: {
        ...process.env,
        VOICECHAT_DATA_DIR: database.dir,
        VOICECHAT_DATABASE_URL: database.databaseUrl,
        VOICECHAT_HOST: '127.0.0.1',
        VOICECHAT_PORT: '0',
        VOICECHAT_KEYRING: keyringFile,
        VOICECHAT_RATE_LIMIT_SCALE: '100000',
        VOICECHAT_LOG_LEVEL: 'warn',
        VOICECHAT_VOICE: 'off',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout! });
    // The server's own warnings are JSON log lines on the same stdout; ours is the bare {"port": n}.
    rl.on('line', (line) => {
      const msg = JSON.parse(line) as { port?: number; level?: unknown };
      if (msg.level === undefined && typeof msg.port === 'number') resolve({ child, port: msg.port });
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

function request(
  agent: http.Agent,
  port: number,
  method: string,
  urlPath: string,
  token: string,
  body?: unknown,
): Promise<{ status: number; body: string }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: '127.0.0.1',
        port,
        method,
        path: urlPath,
        headers: {
          authorization: `Bearer ${token}`,
          ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

/** utime + stime of a process in microseconds (Linux /proc; undefined elsewhere). */
function cpuMicros(pid: number | undefined): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100;
  } catch {
    return undefined;
  }
}

/**
 * A minimal keep-alive HTTP/1.1 connection for the load loops: prebuilt request bytes, responses
 * parsed by Content-Length. node:http costs the client tens of µs per request, and on a 2-core box
 * the load generator competes with the server for CPU, so a light client measures the server better.
 */
class RawConnection {
  readonly #port: number;
  #socket: net.Socket | undefined;
  #buf: Buffer = Buffer.alloc(0);
  #waiting: ((status: number) => void) | undefined;

  constructor(port: number) {
    this.#port = port;
  }

  /** Connects on first use and again after the server closed an idle socket (uWS: 10 s). */
  #connect(): Promise<net.Socket> {
    if (this.#socket) return Promise.resolve(this.#socket);
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.#port, '127.0.0.1', () => {
        this.#socket = socket;
        resolve(socket);
      });
      socket.setNoDelay(true);
      socket.on('data', (d: Buffer) => {
        this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
        this.#parse();
      });
      socket.on('close', () => {
        if (this.#socket === socket) this.#socket = undefined;
        this.#buf = Buffer.alloc(0);
        const waiting = this.#waiting;
        this.#waiting = undefined;
        waiting?.(0); // counted as an error
      });
      socket.once('error', reject);
    });
  }

  #parse(): void {
    const end = this.#buf.indexOf('\r\n\r\n');
    if (end < 0 || !this.#waiting) return;
    const head = this.#buf.subarray(0, end).toString('latin1');
    const status = Number(head.slice(9, 12));
    const m = /\r\ncontent-length: *(\d+)/i.exec(head);
    const total = end + 4 + (m ? Number(m[1]) : 0);
    if (this.#buf.length < total) return;
    this.#buf = this.#buf.subarray(total);
    const done = this.#waiting;
    this.#waiting = undefined;
    done(status);
  }

  async request(bytes: Buffer): Promise<{ status: number }> {
    const socket = await this.#connect();
    return new Promise((resolve) => {
      this.#waiting = (status) => resolve({ status });
      socket.write(bytes);
    });
  }

  close(): void {
    this.#socket?.destroy();
  }
}

function rawRequest(method: string, urlPath: string, token: string, body?: unknown): Buffer {
  const payload = body === undefined ? '' : JSON.stringify(body);
  return Buffer.from(
    `${method} ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
      (payload ? `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n` : '') +
      `\r\n${payload}`,
  );
}

const pct = (sorted: number[], p: number) =>
  sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0);

/** `concurrency` loops, each sending requests back to back for SECONDS. */
async function load(
  concurrency: number,
  send: (worker: number, i: number) => Promise<{ status: number }>,
  okStatus: number,
) {
  const latencies: number[] = [];
  let errors = 0;
  const until = performance.now() + SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let i = 0; performance.now() < until; i++) {
        const t = performance.now();
        const r = await send(w, i);
        latencies.push(performance.now() - t);
        if (r.status !== okStatus) errors++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors,
    per_second: Math.round(latencies.length / elapsed),
    p50_ms: Number(pct(latencies, 50).toFixed(2)),
    p99_ms: Number(pct(latencies, 99).toFixed(2)),
  };
}

const perRequest = (before: number | undefined, after: number | undefined, n: number) =>
  before === undefined || after === undefined || n === 0 ? undefined : Math.round((after - before) / n);

async function seedHistory(db: Db, channelId: string, authorId: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  const base = nowMs() - n;
  for (let i = 0; i < n; i += 1000) {
    const rows: Record<string, unknown>[] = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) {
      const id = newId();
      ids.push(id);
      rows.push({
        id,
        channel_id: channelId,
        author_id: authorId,
        content: `history message ${j}`,
        encrypted: false,
        created_at: base + j,
      });
    }
    // 1000 rows × 6 columns stays under both drivers' bind-parameter limits.
    await db.transaction(async (trx) => {
      for (let k = 0; k < rows.length; k += 100) await trx('messages').insert(rows.slice(k, k + 100));
    });
  }
  return ids.sort();
}

async function benchDialect(dialect: 'sqlite' | 'pg', hash: string): Promise<Result[]> {
  const database = await createTestDatabase({ dialect });
  const keyring = Keyring.generate();
  const keyringFile = path.join(database.dir, 'keys.json');
  keyring.save(keyringFile);
  const senders = await Promise.all(Array.from({ length: 64 }, () => insertUser(database.db, keyring, hash)));
  const owner = senders[0]!;
  const { child, port } = await startServer(database, keyringFile);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
  const results: Result[] = [];
  try {
    const guild = JSON.parse((await request(agent, port, 'POST', '/api/guilds', owner.token, { name: 'bench' })).body);
    const invite = JSON.parse(
      (await request(agent, port, 'POST', `/api/guilds/${guild.id}/invites`, owner.token, {})).body,
    );
    for (const s of senders.slice(1)) await request(agent, port, 'POST', `/api/invites/${invite.code}/join`, s.token);
    const channelId = guild.channels.find((c: { type: string }) => c.type === 'text').id as string;
    const url = `/api/channels/${channelId}/messages`;
    // Warm-up (JIT, caches, connections).
    await load(16, (w) => request(agent, port, 'POST', url, senders[w]!.token, { content: 'warm up' }), 201);
    const conns = senders.map(() => new RawConnection(port));
    for (const c of CONCURRENCY) {
      const cpu0 = cpuMicros(child.pid);
      const r = await load(
        c,
        (w, i) => conns[w]!.request(rawRequest('POST', url, senders[w]!.token, { content: `bench message ${w}/${i}` })),
        201,
      );
      const cpu = perRequest(cpu0, cpuMicros(child.pid), r.requests);
      results.push({ dialect, test: 'message_create', concurrency: c, ...r, server_cpu_us_per_req: cpu });
      process.stderr.write(
        `${dialect} create c=${c}: ${r.per_second}/s p99 ${r.p99_ms} ms, server ${cpu} µs CPU/req\n`,
      );
    }

    const history = JSON.parse(
      (
        await request(agent, port, 'POST', `/api/guilds/${guild.id}/channels`, owner.token, {
          name: 'history',
          type: 'text',
        })
      ).body,
    );
    const t = performance.now();
    const ids = await seedHistory(database.db, history.id, owner.id, HISTORY);
    process.stderr.write(
      `${dialect}: seeded ${HISTORY} messages in ${((performance.now() - t) / 1000).toFixed(1)} s\n`,
    );
    const hurl = `/api/channels/${history.id}/messages?limit=50`;
    for (const c of [1, 16]) {
      const cpu0 = cpuMicros(child.pid);
      const r = await load(
        c,
        (w, i) => {
          const cursor = i % 2 === 0 ? '' : `&before=${ids[Math.floor(Math.random() * ids.length)]}`;
          return conns[w]!.request(rawRequest('GET', hurl + cursor, senders[w]!.token));
        },
        200,
      );
      const cpu = perRequest(cpu0, cpuMicros(child.pid), r.requests);
      results.push({ dialect, test: 'history_read', concurrency: c, ...r, server_cpu_us_per_req: cpu });
      process.stderr.write(
        `${dialect} history c=${c}: ${r.per_second}/s p99 ${r.p99_ms} ms, server ${cpu} µs CPU/req\n`,
      );
    }
  } finally {
    agent.destroy();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await database.drop();
  }
  return results;
}

async function main() {
  const hash = await argon2.hash('bench password', { type: argon2.argon2id, memoryCost: 19456, timeCost: 2 });
  const all: Result[] = [];
  for (const d of DIALECTS) all.push(...(await benchDialect(d, hash)));
  const load1 = os.loadavg()[0]!.toFixed(2);
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, load average ${load1} at the end`;
  console.log(`\nMessages benchmark — ${machine}, ${SECONDS} s per step\n`);
  console.log('dialect  test            conc   requests  errors     per_s   p50_ms   p99_ms  cpu_us/req');
  for (const r of all) {
    console.log(
      `${r.dialect.padEnd(8)} ${r.test.padEnd(15)} ${String(r.concurrency).padStart(4)} ${String(r.requests).padStart(10)} ${String(r.errors).padStart(7)} ${String(r.per_second).padStart(9)} ${r.p50_ms.toFixed(2).padStart(8)} ${r.p99_ms.toFixed(2).padStart(8)} ${String(r.server_cpu_us_per_req ?? '-').padStart(11)}`,
    );
  }
  console.log(`\n${JSON.stringify({ machine, seconds_per_step: SECONDS, results: all }, null, 2)}`);
}

await main();
