/**
 * How the person at the terminal runs this CLI, for the hints commands print ("start the server
 * with …"): `voicechat` when that name on PATH is this package, `npx voicechat` from a checkout or a
 * project that depends on it, else `node /path/to/bin/run.js`. Reads PATH, so it lives in src/config.
 */
import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import type { Env } from './index.js';

const BIN = 'voicechat';

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/** Quotes a word for a POSIX shell when it needs quoting. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function cliInvocation(opts: { packageRoot: string; env?: Env; cwd?: string }): string {
  const env = opts.env ?? process.env;
  const cwd = path.resolve(opts.cwd ?? process.cwd());
  const ownBin = path.join(opts.packageRoot, 'bin', 'run.js');
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir && sameFile(path.join(dir, BIN), ownBin)) return BIN;
  }
  // npx looks in the nearest project (the closest directory with a package.json): our own checkout,
  // or a project with voicechat in node_modules/.bin.
  for (let dir = cwd; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) {
      if (sameFile(dir, opts.packageRoot) || sameFile(path.join(dir, 'node_modules', '.bin', BIN), ownBin)) {
        return `npx ${BIN}`;
      }
      break;
    }
    if (path.dirname(dir) === dir) break;
  }
  return `node ${shellWord(ownBin)}`;
}
