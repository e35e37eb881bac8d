/**
 * Debian's coturn, started by a test on loopback in TURN REST mode (`use-auth-secret`): the same
 * shared secret as the server under test, UDP only, loopback peers allowed (mediasoup listens on
 * 127.0.0.1). `.ci/run` installs coturn when missing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './db.js';

export interface Coturn {
  port: number;
  url: string;
  /** coturn's log so far. */
  log(): string;
  stop(): Promise<void>;
}

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export async function startCoturn(secret: string): Promise<Coturn> {
  const dir = tempDir('vc-coturn-');
  const logFile = path.join(dir, 'turn.log');
  const port = await freeUdpPort();
  const child: ChildProcess = spawn(
    'turnserver',
    [
      '-n', // no config file
      '--listening-ip=127.0.0.1',
      '--relay-ip=127.0.0.1',
      `--listening-port=${port}`,
      '--use-auth-secret',
      `--static-auth-secret=${secret}`,
      '--realm=voicechat.test',
      '--no-tcp',
      '--no-tls',
      '--no-dtls',
      '--no-cli',
      '--allow-loopback-peers',
      '--no-multicast-peers',
      '--min-port=49152',
      '--max-port=65535',
      `--pidfile=${path.join(dir, 'turn.pid')}`,
      `--userdb=${path.join(dir, 'turndb')}`,
      `--log-file=${logFile}`,
      '--simple-log',
      '--verbose',
    ],
    { stdio: 'ignore' },
  );
  const log = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const until = Date.now() + 10_000;
  while (!/listener opened on\s*:?\s*127\.0\.0\.1:\d+|IPv4. UDP listener opened/i.test(log())) {
    if (child.exitCode !== null) throw new Error(`turnserver exited with ${child.exitCode}:\n${log()}`);
    if (Date.now() > until) throw new Error(`turnserver did not start:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    url: `turn:127.0.0.1:${port}?transport=udp`,
    log,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}
