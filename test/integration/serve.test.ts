import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Init from '../../commands/init.js';
import MigrateDown from '../../commands/migrate/down.js';
import MigrateUp from '../../commands/migrate/up.js';
import { runCommand } from '../support/cli.js';
import { createTestDatabase, type TestDatabase, tempDir } from '../support/db.js';
import { mustStart, type ServeProcess, startServe } from '../support/process.js';

const ADMIN_PASSWORD = 'Serve-Test-Password-42';

describe('voicechat serve (real process)', () => {
  let dir: string;
  let database: TestDatabase;
  let configPath: string;
  let keyringFile: string;
  /** Everything any serve process printed, checked for secrets at the end. */
  const printed: string[] = [];
  const running: ServeProcess[] = [];
  const serve = async (args: string[], opts: Parameters<typeof mustStart>[1] = {}) => {
    const p = await mustStart(['--host', '127.0.0.1', '--port', '0', ...args], opts);
    running.push(p);
    return p;
  };
  const collect = (p: ServeProcess) => printed.push(p.stdout(), p.stderr());

  beforeAll(async () => {
    dir = tempDir('vc-serve-');
    database = await createTestDatabase({ migrate: false });
    configPath = path.join(dir, 'voicechat.env');
    keyringFile = path.join(dir, 'keys.json');
    writeFileSync(path.join(dir, 'pw.txt'), ADMIN_PASSWORD);
    const init = await runCommand(Init, [
      '--yes',
      '--config',
      configPath,
      '--data-dir',
      path.join(dir, 'data'),
      ...(database.dialect === 'pg' ? ['--database-url', database.databaseUrl] : []),
      '--admin-username',
      'admin',
      '--admin-password-file',
      path.join(dir, 'pw.txt'),
    ]);
    expect(init.exit, init.stderr).toBe(0);
    printed.push(init.stdout, init.stderr);
  });

  afterAll(async () => {
    for (const p of running) await p.stop();
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves /health with security headers and the JSON error model, then exits 0 on SIGTERM', async () => {
    const p = await serve(['--config', configPath]);
    const base = `http://127.0.0.1:${p.port}`;
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    expect(health.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(health.headers.get('x-frame-options')).toBe('DENY');
    expect(health.headers.get('x-content-type-options')).toBe('nosniff');
    expect(health.headers.get('referrer-policy')).toBe('no-referrer');
    expect(health.headers.get('strict-transport-security')).toBeNull();

    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', voice: { available: true, workers: 1 } });
    expect(p.logs().find((l) => l.msg === 'voice available')).toMatchObject({ workers: 1 });

    // The browser client built into dist/web is served at / with its own CSP.
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="app"></div>');
    expect(page.headers.get('content-security-policy')).toContain("require-trusted-types-for 'script'");

    const missing = await fetch(`${base}/api/nowhere`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { code: 'NOT_FOUND', message: expect.any(String) } });

    const malformed = await fetch(`${base}/nowhere`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"unterminated": ',
    });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as any).error.code).toBe('VALIDATION_FAILED');

    const big = await fetch(`${base}/nowhere`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ a: 'x'.repeat(1024 * 1024) }),
    });
    expect(big.status).toBe(413);
    expect(((await big.json()) as any).error.code).toBe('PAYLOAD_TOO_LARGE');

    // The server is still fine after the bad requests.
    expect((await fetch(`${base}/health`)).status).toBe(200);

    const started = p.logs().find((l) => l.msg === 'voicechat started');
    expect(started?.startup_ms).toEqual(expect.any(Number));

    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    const msgs = p.logs().map((l) => l.msg);
    expect(msgs.indexOf('shutting down')).toBeGreaterThan(-1);
    expect(msgs.indexOf('stopped')).toBeGreaterThan(msgs.indexOf('shutting down'));
    await expect(fetch(`${base}/health`)).rejects.toThrow();
    collect(p);
  });

  it('without a mediasoup worker it serves text chat and says why voice is unavailable', async () => {
    const p = await serve(['--config', configPath], { env: { MEDIASOUP_WORKER_BIN: path.join(dir, 'no-worker') } });
    const base = `http://127.0.0.1:${p.port}`;
    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { status: string; voice: { available: boolean; reason: string } };
    expect(body.status).toBe('ready');
    expect(body.voice).toEqual({ available: false, reason: expect.stringMatching(/worker binary is missing/) });
    const warned = p.logs().find((l) => l.msg === 'voice unavailable: text chat only');
    expect(warned?.reason).toBe(body.voice.reason);
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect(await p.stop()).toBe(0);
    collect(p);
  });

  it('flags override the config file (--port)', async () => {
    // Another socket holds a port: asking for it explicitly must fail cleanly, proving --port is used.
    // (A second serve on the same config would be refused by the SQLite data-directory lock first:
    // serve-guards.test.ts covers both.)
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
    const port = (holder.address() as net.AddressInfo).port;
    const clash = await startServe(['--config', configPath, '--host', '127.0.0.1', '--port', String(port)]);
    holder.close();
    expect('exit' in clash && clash.exit).not.toBe(0);
    if ('exit' in clash) {
      expect(clash.stderr.trim().split('\n')).toHaveLength(1);
      expect(clash.stderr).toMatch(/cannot listen on 127\.0\.0\.1:\d+/);
      printed.push(clash.stdout, clash.stderr);
    }
  });

  it('refuses to start, with a one-line reason, while migrations are pending', async () => {
    const down = await runCommand(MigrateDown, ['--config', configPath, '--yes', '--all']);
    expect(down.exit, down.stderr).toBe(0);
    const outcome = await startServe(['--config', configPath, '--port', '0', '--host', '127.0.0.1']);
    expect('exit' in outcome).toBe(true);
    if ('exit' in outcome) {
      expect(outcome.exit).toBe(3);
      expect(outcome.stderr).toMatch(
        /^Error: Invalid configuration: \d+ database migration\(s\) pending .*voicechat migrate up`\n$/,
      );
      printed.push(outcome.stdout, outcome.stderr);
    }
    expect((await runCommand(MigrateUp, ['--config', configPath])).exit).toBe(0);
  });

  it('refuses to start when keys are missing, group-readable or invalid, never echoing a key', async () => {
    const refused = async (env: Record<string, string> = {}) => {
      const o = await startServe(['--config', configPath, '--port', '0', '--host', '127.0.0.1'], { env });
      if ('started' in o) {
        await o.started.stop();
        throw new Error('serve started but should have refused');
      }
      printed.push(o.stdout, o.stderr);
      expect(o.exit).toBe(3);
      expect(o.stderr.trim().split('\n')).toHaveLength(1);
      return o.stderr;
    };
    renameSync(keyringFile, `${keyringFile}.away`);
    try {
      expect(await refused()).toMatch(/keyring .*keys\.json not found/);
    } finally {
      renameSync(`${keyringFile}.away`, keyringFile);
    }
    chmodSync(keyringFile, 0o640);
    try {
      expect(await refused()).toMatch(/accessible by group or others/);
    } finally {
      chmodSync(keyringFile, 0o600);
    }
    const badKey = 'f00d'.repeat(15); // 60 hex characters
    const reason = await refused({ MFA_ENCRYPTION_KEY: badKey });
    expect(reason).toContain('MFA_ENCRYPTION_KEY');
    expect(reason).not.toContain(badKey);
  });

  it('first run with no config anywhere initialises ./data and serves', async () => {
    if (existsSync('/etc/voicechat/voicechat.env')) return; // a real install on this machine: not a first run
    const cwd = tempDir('vc-firstrun-');
    try {
      const p = await serve([], { cwd });
      expect((await fetch(`http://127.0.0.1:${p.port}/health`)).status).toBe(200);
      expect(statSync(path.join(cwd, 'data', 'voicechat.env')).mode & 0o777).toBe(0o600);
      expect(statSync(path.join(cwd, 'data', 'keys.json')).mode & 0o777).toBe(0o600);
      expect(existsSync(path.join(cwd, 'data', 'voicechat.db'))).toBe(true);
      expect(p.stderr()).toMatch(/First run: initialised .*data/);
      expect(p.stderr()).toMatch(/voicechat users create/);
      expect(await p.stop()).toBe(0);
      collect(p);

      // The second start finds the config and keeps the keyring.
      const keys = readFileSync(path.join(cwd, 'data', 'keys.json'), 'utf8');
      const again = await serve([], { cwd });
      expect(again.stderr()).not.toMatch(/First run/);
      expect(readFileSync(path.join(cwd, 'data', 'keys.json'), 'utf8')).toBe(keys);
      expect(await again.stop()).toBe(0);
      collect(again);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  // Needs the openssl CLI to make a throwaway certificate (.ci/run installs it when missing).
  it('serves HTTPS with HSTS when VOICECHAT_TLS_CERT/KEY are set', async () => {
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
      ].concat(['-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']),
      { stdio: 'ignore' },
    );
    const p = await serve(['--config', configPath], { env: { VOICECHAT_TLS_CERT: cert, VOICECHAT_TLS_KEY: key } });
    const res = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
      (resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: p.port, path: '/health', ca: readFileSync(cert) }, (r) => {
          let body = '';
          r.on('data', (d) => {
            body += d;
          });
          r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, body }));
        });
        req.on('error', reject);
        req.end();
      },
    );
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: 'ok' });
    expect(res.headers['strict-transport-security']).toMatch(/max-age=31536000/);
    // Plain HTTP on the TLS port gets no answer.
    await expect(fetch(`http://127.0.0.1:${p.port}/health`)).rejects.toThrow();
    expect(await p.stop()).toBe(0);
    collect(p);
  });

  it('never prints the admin password or a key', () => {
    const keys = JSON.parse(readFileSync(keyringFile, 'utf8'));
    const all = printed.join('\n');
    expect(all.length).toBeGreaterThan(0);
    expect(all).not.toContain(ADMIN_PASSWORD);
    for (const purpose of ['jwt', 'mfa', 'megolm']) {
      for (const k of keys[purpose]) expect(all).not.toContain(k.key);
    }
    expect(all).not.toMatch(/\$argon2id\$/);
  });
});
