/**
 * Issue 14 item 8, against the real `voicechat serve` process: a world-readable config file is
 * refused; SIGTERM stops the server when its stdout pipe has closed or stalled; a second server on the
 * same port, or on the same SQLite data directory, is refused with a one-line reason, while a lock
 * left by a killed server does not block the next start.
 */
import { chmodSync, copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Init from '../../commands/init.js';
import { runCommand } from '../support/cli.js';
import { createTestDatabase, type TestDatabase, tempDir } from '../support/db.js';
import { mustStart, type ServeProcess, startServe } from '../support/process.js';

const QUIET = { VOICECHAT_VOICE: 'off' };

/** `init --yes` into a fresh directory (the test dialect's database, or SQLite when asked). */
async function initConfig(dir: string, databaseUrl = ''): Promise<string> {
  const configPath = path.join(dir, 'voicechat.env');
  const init = await runCommand(Init, [
    '--yes',
    '--config',
    configPath,
    '--data-dir',
    path.join(dir, 'data'),
    ...(databaseUrl ? ['--database-url', databaseUrl] : []),
  ]);
  expect(init.exit, init.stderr).toBe(0);
  return configPath;
}

/** `count` refused WebSocket upgrades (each one a debug log line), `parallel` at a time. */
async function refusedUpgrades(port: number, count: number, parallel = 16): Promise<void> {
  let left = count;
  const one = () =>
    new Promise<void>((resolve) => {
      const req = http.get({
        host: '127.0.0.1',
        port,
        path: '/ws',
        headers: {
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        },
      });
      req.on('response', (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('upgrade', (_res, socket) => {
        socket.destroy();
        resolve();
      });
      req.on('error', () => resolve());
    });
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (left-- > 0) await one();
    }),
  );
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Waits for the process to exit, or fails after `ms`. */
async function exitsWithin(p: ServeProcess, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => {
    timer = setTimeout(() => r('timeout'), ms);
  });
  const outcome = await Promise.race([p.exited, timeout]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    p.child.kill('SIGKILL');
    throw new Error(`serve did not exit within ${ms} ms of SIGTERM`);
  }
  return outcome;
}

describe('serve guards (real process)', { timeout: 120_000 }, () => {
  let dir: string;
  let database: TestDatabase;
  let configPath: string;
  const running: ServeProcess[] = [];
  const serve = async (config: string, env: Record<string, string> = {}, port = '0') => {
    const p = await mustStart(['--config', config, '--host', '127.0.0.1', '--port', port], {
      env: { ...QUIET, ...env },
    });
    running.push(p);
    return p;
  };

  beforeAll(async () => {
    dir = tempDir('vc-guards-');
    database = await createTestDatabase({ migrate: false });
    configPath = await initConfig(path.join(dir, 'main'), database.databaseUrl);
  });

  afterAll(async () => {
    for (const p of running) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a config file others can read, naming the path and the mode', async () => {
    const copy = path.join(dir, 'main', 'open.env');
    copyFileSync(configPath, copy);
    for (const mode of [0o644, 0o604, 0o602]) {
      chmodSync(copy, mode);
      const o = await startServe(['--config', copy, '--host', '127.0.0.1', '--port', '0'], { env: QUIET });
      if ('started' in o) {
        await o.started.stop();
        throw new Error(`serve started with a mode ${mode.toString(8)} config`);
      }
      expect(o.exit).toBe(3);
      expect(o.stderr.trim().split('\n')).toHaveLength(1);
      expect(o.stderr).toContain(`config file ${copy} is accessible by others (mode ${mode.toString(8)})`);
      expect(o.stderr).toContain('chmod o-rwx');
    }
    // Group-readable (the packaged install: root:voicechat 0640) is fine.
    chmodSync(copy, 0o640);
    const p = await serve(copy);
    expect(await p.stop()).toBe(0);
  });

  it('stops on SIGTERM when its stdout reader has gone away (serve | head -1)', async () => {
    const p = await serve(configPath, { VOICECHAT_LOG_LEVEL: 'debug' });
    p.child.stdout.destroy(); // the reader exits: every later write is EPIPE
    await refusedUpgrades(p.port, 200);
    expect((await fetch(`http://127.0.0.1:${p.port}/health`)).status).toBe(200);
    p.child.kill('SIGTERM');
    expect(await exitsWithin(p, 8000)).toBe(0);
  });

  it('stops on SIGTERM when its stdout reader has stalled (a full pipe)', async () => {
    const p = await serve(configPath, { VOICECHAT_LOG_LEVEL: 'debug', VOICECHAT_RATE_LIMIT_SCALE: '1000' });
    p.child.stdout.pause(); // still open, never read again: the pipe fills up
    const before = p.stdout().length;
    // ≈ 2,500 debug lines of ~200 bytes: several times the pipe buffer and the reader's high-water mark.
    await refusedUpgrades(p.port, 2500);
    expect((await fetch(`http://127.0.0.1:${p.port}/health`)).status).toBe(200);
    const started = Date.now();
    p.child.kill('SIGTERM');
    expect(await exitsWithin(p, 8000)).toBe(0);
    expect(Date.now() - started).toBeLessThan(8000);
    expect(p.stdout().length - before).toBeLessThan(2500 * 100); // most lines were never read
  });

  it('refuses a second server on the same port with a one-line reason', async () => {
    // A fixed port, as in production: the kernel never shares a port picked for `--port 0`.
    const first = await serve(configPath, {}, String(await freePort()));
    // Another installation (its own data directory) asking for the same port.
    const other = await initConfig(path.join(dir, 'other'));
    const clash = await startServe(['--config', other, '--host', '127.0.0.1', '--port', String(first.port)], {
      env: QUIET,
    });
    if ('started' in clash) {
      await clash.started.stop();
      throw new Error('a second server started on a port already in use');
    }
    expect(clash.exit).not.toBe(0);
    expect(clash.stderr.trim().split('\n')).toHaveLength(1);
    expect(clash.stderr).toMatch(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.port}`));
    // The first server is untouched and answers alone.
    for (let i = 0; i < 5; i++) expect((await fetch(`http://127.0.0.1:${first.port}/health`)).status).toBe(200);
    // A plain socket holding a port refuses serve the same way.
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
    const held = (holder.address() as net.AddressInfo).port;
    const refused = await startServe(['--config', other, '--host', '127.0.0.1', '--port', String(held)], {
      env: QUIET,
    });
    holder.close();
    expect('exit' in refused && refused.exit).not.toBe(0);
    expect(await first.stop()).toBe(0);
  });

  it('refuses a second server on the same SQLite data directory; a killed server’s lock does not block', async () => {
    const sqliteConfig = await initConfig(path.join(dir, 'sqlite'));
    const lock = path.join(dir, 'sqlite', 'data', 'voicechat.lock');
    const first = await serve(sqliteConfig);
    expect(JSON.parse(readFileSync(lock, 'utf8')).pid).toBe(first.child.pid);
    const second = await startServe(['--config', sqliteConfig, '--host', '127.0.0.1', '--port', '0'], { env: QUIET });
    if ('started' in second) {
      await second.started.stop();
      throw new Error('a second server started on the same SQLite data directory');
    }
    expect(second.exit).toBe(3);
    expect(second.stderr.trim().split('\n')).toHaveLength(1);
    expect(second.stderr).toContain(`another voicechat server (pid ${first.child.pid}) is already running`);
    expect(second.stderr).toContain(lock);
    // A clean stop removes the lock.
    expect(await first.stop()).toBe(0);
    expect(existsSync(lock)).toBe(false);

    // SIGKILL leaves the lock behind; the next start sees its holder is gone and takes it over.
    const killed = await serve(sqliteConfig);
    killed.child.kill('SIGKILL');
    await killed.exited;
    expect(JSON.parse(readFileSync(lock, 'utf8')).pid).toBe(killed.child.pid);
    const next = await serve(sqliteConfig);
    expect(JSON.parse(readFileSync(lock, 'utf8')).pid).toBe(next.child.pid);
    expect(await next.stop()).toBe(0);

    // A truncated lock (a crash between create and write cannot happen, but a disk can) is stale too.
    writeFileSync(lock, '{"pid":', { mode: 0o600 });
    const afterGarbage = await serve(sqliteConfig);
    expect(await afterGarbage.stop()).toBe(0);
    expect(existsSync(lock)).toBe(false);
  });
});
