/**
 * Spawns the real `voicechat serve` process (from sources, through bin/dev.js), waits for its
 * "voicechat started" log line and reads the bound port from it (so `--port 0` works).
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { ROOT } from './cli.js';

export interface ServeProcess {
  port: number;
  child: ChildProcessByStdio<null, Readable, Readable>;
  stdout(): string;
  stderr(): string;
  /** Parsed JSON log lines so far. */
  logs(): Record<string, unknown>[];
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  /** SIGTERM (if still running) and wait for exit. */
  stop(): Promise<number | null>;
}

export type ServeOutcome = { started: ServeProcess } | { exit: number | null; stdout: string; stderr: string };

/** Cleans VOICECHAT_* from the inherited environment so only what the test sets applies. */
function cleanEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(VOICECHAT_|JWT_SECRET|MFA_ENCRYPTION_KEY|MEGOLM_ENCRYPTION_KEY|REDIS_URL)/.test(k)) env[k] = v;
  }
  // Voice on, but on any free media port with one worker: parallel test runs must not fight over 40000.
  return {
    ...env,
    VOICECHAT_RTC_PORT: '0',
    VOICECHAT_RTC_WORKERS: '1',
    VOICECHAT_RTC_LISTEN_IP: '127.0.0.1',
    ...extra,
  };
}

export function startServe(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string | undefined>; timeoutMs?: number } = {},
): Promise<ServeOutcome> {
  const child = spawn(process.execPath, [`${ROOT}/bin/dev.js`, 'serve', ...args], {
    cwd: opts.cwd ?? ROOT,
    env: cleanEnv(opts.env ?? {}),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const logs = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not start in time\nstdout: ${out}\nstderr: ${err}`));
    }, opts.timeoutMs ?? 20_000);
    child.stdout.on('data', (d) => {
      out += d;
      const started = logs().find((l) => l.msg === 'voicechat started');
      if (started) {
        clearTimeout(timer);
        resolve({
          started: {
            port: started.port as number,
            child,
            stdout: () => out,
            stderr: () => err,
            logs,
            exited,
            async stop() {
              if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
              return exited;
            },
          },
        });
      }
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    void exited.then((exit) => {
      clearTimeout(timer);
      resolve({ exit, stdout: out, stderr: err });
    });
  });
}

export async function mustStart(args: string[], opts: Parameters<typeof startServe>[1] = {}): Promise<ServeProcess> {
  const outcome = await startServe(args, opts);
  if ('started' in outcome) return outcome.started;
  throw new Error(`serve exited with ${outcome.exit}: ${outcome.stderr}`);
}
