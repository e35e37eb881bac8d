/**
 * Runs CLI commands in-process (the oclif way: `Command.run(argv, loadOptions)`) and captures what
 * they print, or spawns the real `bin/dev.js` when a test needs the process (exit code, stderr).
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { format } from 'node:util';
import type { Command } from '@oclif/core';
import { vi } from 'vitest';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const pjson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
/** The project's oclif config without command discovery: the command class is handed over directly. */
const loadOptions = { root: ROOT, pjson: { ...pjson, oclif: { ...pjson.oclif, commands: undefined } } };

export interface CliResult {
  stdout: string;
  stderr: string;
  /** 0 on success, else the exit code the command failed with. */
  exit: number;
  error?: Error;
}

type CommandClass = { run(argv: string[], opts: unknown): Promise<unknown> } & typeof Command;

export async function runCommand(cmd: CommandClass, argv: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  // oclif prints through console.log / console.error (which vitest intercepts), so capture those too.
  const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    stdout += `${format(...args)}\n`;
  });
  const error = vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
    stderr += `${format(...args)}\n`;
  });
  try {
    await cmd.run(argv, loadOptions);
    return { stdout, stderr, exit: 0 };
  } catch (e) {
    const error = e as Error & { oclif?: { exit?: number } };
    return { stdout, stderr, exit: error.oclif?.exit ?? 1, error };
  } finally {
    out.mockRestore();
    err.mockRestore();
    log.mockRestore();
    error.mockRestore();
  }
}

/** Spawns `node bin/dev.js …` (the CLI from sources) and waits for it to exit. */
export interface CliProcess {
  child: ChildProcessByStdio<null, Readable, Readable>;
  done: Promise<{ exit: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** Spawns `node bin/dev.js …` and hands back the process (a test may kill it) and its outcome. */
export function startCli(
  argv: string[],
  opts: { cwd?: string; env?: Record<string, string | undefined>; inheritEnv?: boolean } = {},
): CliProcess {
  const child = spawn(process.execPath, [`${ROOT}/bin/dev.js`, ...argv], {
    cwd: opts.cwd ?? ROOT,
    env:
      opts.inheritEnv === false
        ? { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...opts.env }
        : { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const done = new Promise<Awaited<CliProcess['done']>>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (exit, signal) => resolve({ exit, signal, stdout, stderr }));
  });
  return { child, done };
}

/** Spawns `node bin/dev.js …` (the CLI from sources) and waits for it to exit. */
export async function spawnCli(
  argv: string[],
  opts: { cwd?: string; env?: Record<string, string | undefined> } = {},
): Promise<{ stdout: string; stderr: string; exit: number | null }> {
  const { stdout, stderr, exit } = await startCli(argv, opts).done;
  return { stdout, stderr, exit };
}
