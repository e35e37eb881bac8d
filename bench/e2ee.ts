/**
 * `npm run bench:e2ee`: one-time key claims per second at 16 concurrent claimers (SQLite, and Postgres
 * when BENCH_DIALECTS includes pg), and to-device delivery latency (POST /api/keys/to-device → the
 * `to_device` event on the recipient's socket) with 200 connected devices. The server runs in its own
 * process (bench/server.ts); rate limits are raised with VOICECHAT_RATE_LIMIT_SCALE, never removed.
 * Targets (issue 10): ≥ 2,000 claims/s on SQLite; delivery p99 < 15 ms.
 *
 * Env: BENCH_SECONDS (claims, default 5), BENCH_DIALECTS (default "sqlite,pg"), BENCH_DEVICES (200),
 * BENCH_MESSAGES (to-device messages, default 2000), BENCH_IN_FLIGHT (concurrent sends, default 4),
 * BENCH_DELIVERY=0 (claims only), BENCH_PROF=DIR (CPU profile of the server into DIR).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import WebSocket from 'ws';
import { EVERYONE_DEFAULT } from '../src/access/permissions.js';
import { signAccessToken } from '../src/auth/tokens.js';
import { Keyring } from '../src/crypto/keyring.js';
import { hashToken, randomToken } from '../src/crypto/random.js';
import type { Db } from '../src/db/knex.js';
import { newId, nowMs } from '../src/ids.js';
import { createTestDatabase, type TestDatabase } from '../test/support/db.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const DIALECTS = (process.env.BENCH_DIALECTS ?? 'sqlite,pg').split(',') as ('sqlite' | 'pg')[];
const DEVICES = Number(process.env.BENCH_DEVICES ?? 200);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 2000);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 4);
const CLAIMERS = 16;
const TARGETS = 400; // × 100 keys each: more keys than a run claims, so every claim is a real one

const key32 = () => randomBytes(32).toString('base64').replace(/=+$/, '');

interface User {
  id: string;
  token: string;
}

async function insertUsers(db: Db, keyring: Keyring, n: number): Promise<User[]> {
  const now = nowMs();
  const users = Array.from({ length: n }, () => ({ id: newId(), sessionId: newId() }));
  for (let i = 0; i < n; i += 200) {
    const chunk = users.slice(i, i + 200);
    await db('users').insert(
      chunk.map((u) => ({
        id: u.id,
        username: `b_${u.id.slice(-12).replace(/-/g, '')}`,
        password_hash: 'x',
        created_at: now,
        updated_at: now,
      })),
    );
    await db('sessions').insert(
      chunk.map((u) => ({
        id: u.sessionId,
        family_id: u.sessionId,
        user_id: u.id,
        token_hash: hashToken(randomToken()),
        created_at: now,
        last_used_at: now,
        expires_at: now + 86400_000,
      })),
    );
  }
  return users.map((u) => ({
    id: u.id,
    token: signAccessToken(keyring, { userId: u.id, sessionId: u.sessionId }, 3600),
  }));
}

/** One guild with everyone in it (key lookups need a shared guild). */
async function oneGuild(db: Db, users: User[]) {
  const now = nowMs();
  const guildId = newId();
  await db('guilds').insert({ id: guildId, name: 'bench', owner_id: users[0]!.id, created_at: now, updated_at: now });
  await db('roles').insert({
    id: newId(),
    guild_id: guildId,
    name: '@everyone',
    permissions: EVERYONE_DEFAULT.toString(),
    position: 0,
    is_everyone: true,
    created_at: now,
  });
  for (let i = 0; i < users.length; i += 500)
    await db('guild_members').insert(
      users.slice(i, i + 500).map((u) => ({ guild_id: guildId, user_id: u.id, joined_at: now })),
    );
}

/** A device per user, written straight to the database (plus `keys` one-time keys each). */
async function insertDevices(db: Db, users: User[], keys: number) {
  const now = nowMs();
  const devices = users.map((u) => ({
    id: newId(),
    user_id: u.id,
    device_id: 'BENCHDEV',
    curve25519: key32(),
    ed25519: key32(),
    fallback_key_id: 'fb',
    fallback_key: key32(),
    created_at: now,
  }));
  for (let i = 0; i < devices.length; i += 200) await db('devices').insert(devices.slice(i, i + 200));
  const rows = devices.flatMap((d) =>
    Array.from({ length: keys }, (_, k) => ({
      id: newId(),
      device_id: d.id,
      key_id: `AAAA${k}`,
      key: key32(),
      created_at: now,
    })),
  );
  for (let i = 0; i < rows.length; i += 500) await db('one_time_keys').insert(rows.slice(i, i + 500));
}

function startServer(database: TestDatabase, keyringFile: string): Promise<{ child: ChildProcess; port: number }> {
  const prof = process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [];
  const child = spawn(process.execPath, [...prof, '--import', 'tsx', path.join(import.meta.dirname, 'server.ts')], {
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
  });
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      try {
        const msg = JSON.parse(line) as { port?: number; level?: unknown };
        if (msg.level === undefined && typeof msg.port === 'number') resolve({ child, port: msg.port });
      } catch {}
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
function request(port: number, method: string, urlPath: string, token: string, body?: unknown) {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
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

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

interface ClaimResult {
  dialect: string;
  concurrency: number;
  claims: number;
  fallbacks: number;
  errors: number;
  per_second: number;
  p50_ms: number;
  p99_ms: number;
}

async function benchClaims(dialect: 'sqlite' | 'pg'): Promise<ClaimResult> {
  const database = await createTestDatabase({ dialect });
  const keyring = Keyring.generate();
  const keyringFile = path.join(database.dir, 'keys.json');
  keyring.save(keyringFile);
  const claimers = await insertUsers(database.db, keyring, CLAIMERS);
  const targets = await insertUsers(database.db, keyring, TARGETS);
  await oneGuild(database.db, [...claimers, ...targets]);
  await insertDevices(database.db, targets, 100);
  const { child, port } = await startServer(database, keyringFile);
  try {
    // Warm-up: one claim per claimer (JIT, connections).
    await Promise.all(
      claimers.map((c, i) => request(port, 'POST', `/api/users/${targets[i]!.id}/keys/claim`, c.token, {})),
    );
    const latencies: number[] = [];
    let fallbacks = 0;
    let errors = 0;
    let next = CLAIMERS;
    const until = performance.now() + SECONDS * 1000;
    const start = performance.now();
    await Promise.all(
      claimers.map(async (c) => {
        while (performance.now() < until) {
          const target = targets[next++ % TARGETS]!;
          const t0 = performance.now();
          const r = await request(port, 'POST', `/api/users/${target.id}/keys/claim`, c.token, {});
          latencies.push(performance.now() - t0);
          if (r.status !== 200) errors++;
          else if (JSON.parse(r.body).one_time_keys.BENCHDEV?.fallback !== false) fallbacks++;
        }
      }),
    );
    const elapsed = (performance.now() - start) / 1000;
    latencies.sort((x, y) => x - y);
    return {
      dialect,
      concurrency: CLAIMERS,
      claims: latencies.length,
      fallbacks,
      errors,
      per_second: Math.round(latencies.length / elapsed),
      p50_ms: Number(pct(latencies, 0.5).toFixed(2)),
      p99_ms: Number(pct(latencies, 0.99).toFixed(2)),
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await database.drop();
  }
}

interface DeliveryResult {
  devices: number;
  messages: number;
  in_flight: number;
  lost: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

async function benchDelivery(): Promise<DeliveryResult> {
  const database = await createTestDatabase({ dialect: 'sqlite' });
  const keyring = Keyring.generate();
  const keyringFile = path.join(database.dir, 'keys.json');
  keyring.save(keyringFile);
  const users = await insertUsers(database.db, keyring, DEVICES + 1);
  await oneGuild(database.db, users);
  await insertDevices(database.db, users, 0);
  const [sender, ...recipients] = users as [User, ...User[]];
  const { child, port } = await startServer(database, keyringFile);
  const sockets: WebSocket[] = [];
  try {
    const pending = new Map<string, (at: number) => void>();
    await Promise.all(
      recipients.map(
        (u) =>
          new Promise<void>((resolve, reject) => {
            const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, [`access_token.${u.token}`, 'access_token']);
            sockets.push(ws);
            ws.on('message', (data) => {
              const f = JSON.parse(data.toString()) as { type: string; data: { ciphertext: string } };
              if (f.type === 'ready') resolve();
              else if (f.type === 'to_device') pending.get(f.data.ciphertext)?.(performance.now());
            });
            ws.once('error', reject);
          }),
      ),
    );
    const latencies: number[] = [];
    let lost = 0;
    let n = 0;
    const sendOne = async () => {
      const i = n++;
      const to = recipients[i % recipients.length]!;
      const ciphertext = `m${i}-${randomBytes(48).toString('base64')}`;
      const received = new Promise<number>((resolve) => {
        const timer = setTimeout(() => resolve(Number.NaN), 5000);
        pending.set(ciphertext, (at) => {
          clearTimeout(timer);
          resolve(at);
        });
      });
      const t0 = performance.now();
      const r = await request(port, 'POST', '/api/keys/to-device', sender.token, {
        device_id: 'BENCHDEV',
        messages: { [to.id]: { BENCHDEV: { type: 1, ciphertext } } },
      });
      const at = r.status === 200 ? await received : Number.NaN;
      pending.delete(ciphertext);
      if (Number.isNaN(at)) lost++;
      else latencies.push(at - t0);
    };
    for (let i = 0; i < 50; i++) await sendOne(); // warm-up
    latencies.length = 0;
    lost = 0;
    n = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (n < MESSAGES) await sendOne();
      }),
    );
    latencies.sort((x, y) => x - y);
    return {
      devices: recipients.length,
      messages: latencies.length + lost,
      in_flight: IN_FLIGHT,
      lost,
      p50_ms: Number(pct(latencies, 0.5).toFixed(2)),
      p99_ms: Number(pct(latencies, 0.99).toFixed(2)),
      max_ms: Number((latencies.at(-1) ?? 0).toFixed(2)),
    };
  } finally {
    for (const ws of sockets) ws.terminate();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await database.drop();
  }
}

async function main() {
  const load0 = os.loadavg()[0]!.toFixed(2);
  const claims: ClaimResult[] = [];
  for (const d of DIALECTS) {
    const r = await benchClaims(d);
    claims.push(r);
    process.stderr.write(`${d} claims: ${r.per_second}/s (p99 ${r.p99_ms} ms, ${r.fallbacks} fallbacks)\n`);
  }
  const delivery = process.env.BENCH_DELIVERY === '0' ? undefined : await benchDelivery();
  const load1 = os.loadavg()[0]!.toFixed(2);
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, load average ${load0} at the start, ${load1} at the end`;
  console.log(`\nE2EE benchmark — ${machine}\n`);
  console.log('key claims (POST /api/users/:id/keys/claim), target ≥ 2,000/s on SQLite');
  console.log('dialect  conc    claims  fallbacks  errors   per_s   p50_ms   p99_ms');
  for (const r of claims)
    console.log(
      `${r.dialect.padEnd(8)} ${String(r.concurrency).padStart(4)} ${String(r.claims).padStart(9)} ${String(r.fallbacks).padStart(10)} ${String(r.errors).padStart(7)} ${String(r.per_second).padStart(7)} ${r.p50_ms.toFixed(2).padStart(8)} ${r.p99_ms.toFixed(2).padStart(8)}`,
    );
  if (delivery) {
    console.log(
      `\nto-device delivery (send → live receipt), ${delivery.devices} connected devices, target p99 < 15 ms`,
    );
    console.log(
      `messages ${delivery.messages}, in flight ${delivery.in_flight}, lost ${delivery.lost}: p50 ${delivery.p50_ms} ms, p99 ${delivery.p99_ms} ms, max ${delivery.max_ms} ms`,
    );
  }
  console.log(`\n${JSON.stringify({ machine, claims, delivery }, null, 2)}`);
  agent.destroy();
}

await main();
