/**
 * Spawns server nodes as separate processes (real multi-node: separate uWS apps, separate buses)
 * sharing one database and keyring; used by the multi-node test and the gateway benchmark.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BusMessage } from '../../src/events/bus.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface NodeProcess {
  child: ChildProcess;
  port: number;
  url: string;
  wsUrl: string;
  /** Publishes on this node's bus (what a REST mutation on this node does after its commit). */
  publish(message: BusMessage): void;
  /** Publishes and resolves once the node has done so (an IPC round trip, like awaiting a REST call). */
  publishAcked(message: BusMessage): Promise<void>;
  /** `count` copies of a dispatch published in one loop on the node (data.n = 0…count-1). */
  burst(message: BusMessage, count: number): void;
  stats(): Promise<{ rss: number; heapUsed: number; heapTotal: number; external: number; connections: number }>;
  /** Reads `count` random Megolm session rows through the node's live keyring. */
  megolmRead(count: number): Promise<{ read: number; failed: number; active: string }>;
  output(): string;
  stop(): Promise<void>;
}

export function startNodeProcess(
  env: Record<string, string>,
  script = path.join(here, 'node-process.ts'),
): Promise<NodeProcess> {
  // TypeScript sources run under tsx; a compiled .js script (the benchmark's build) runs on plain node.
  const flags = (env.NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const args = script.endsWith('.ts') ? [...flags, '--import', 'tsx', script] : [...flags, '--expose-gc', script];
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH ?? '', VOICECHAT_HOST: '127.0.0.1', VOICECHAT_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d) => {
    out += d.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not start: ${out}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`node exited ${code}: ${out}`)));
    child.on('message', function onMessage(m: { type: string; port: number }) {
      if (m.type !== 'listening') return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve({
        child,
        port: m.port,
        url: `http://127.0.0.1:${m.port}`,
        wsUrl: `ws://127.0.0.1:${m.port}/ws`,
        publish: (message) => child.send({ type: 'publish', message }),
        publishAcked: (message) =>
          new Promise<void>((res) => {
            child.on('message', function onAck(a: { type: string }) {
              if (a.type !== 'ack') return;
              child.off('message', onAck);
              res();
            });
            child.send({ type: 'publish', message, ack: true });
          }),
        burst: (message, count) => child.send({ type: 'burst', message, count }),
        stats: () =>
          new Promise((res) => {
            child.on('message', function onStats(s: { type: string } & Record<string, number>) {
              if (s.type !== 'stats') return;
              child.off('message', onStats);
              res(s as never);
            });
            child.send({ type: 'stats' });
          }),
        megolmRead: (count) =>
          new Promise((res) => {
            child.on('message', function onRead(r: { type: string } & Record<string, unknown>) {
              if (r.type !== 'megolm-read') return;
              child.off('message', onRead);
              res(r as never);
            });
            child.send({ type: 'megolm-read', count });
          }),
        output: () => out,
        stop: () =>
          new Promise((res) => {
            if (child.exitCode !== null) return res();
            child.once('exit', () => res());
            child.send({ type: 'stop' });
            setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
          }),
      });
    });
  });
}
