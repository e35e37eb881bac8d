/**
 * The project's mediasoup worker install (scripts/mediasoup-worker.mjs): the worker it put in place
 * runs, its source patches fit the mediasoup version in node_modules (and refuse anything else), and
 * when no worker can be had `npm install` still succeeds — loudly — unless CI asks for strictness.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/db.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SCRIPT = path.join(ROOT, 'scripts/mediasoup-worker.mjs');
const MS = path.join(ROOT, 'node_modules/mediasoup');
const dirs: string[] = [];
const scratch = () => {
  const d = tempDir('vc-ms-install-');
  dirs.push(d);
  return d;
};

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('mediasoup worker install', () => {
  it('put a worker in place that passes mediasoup’s own check (exit code 41 when run alone)', () => {
    const r = spawnSync(path.join(MS, 'worker/out/Release/mediasoup-worker'), [], { env: {} });
    expect(r.status).toBe(41);
    expect(JSON.parse(readFileSync(path.join(MS, 'package.json'), 'utf8')).version).toBe('3.19.3');
  });

  it('its source patches apply to the shipped worker sources, each one changing what it names', () => {
    const copy = path.join(scratch(), 'worker');
    cpSync(path.join(MS, 'worker'), copy, { recursive: true, filter: (s) => !s.includes(`${path.sep}out`) });
    const r = spawnSync(process.execPath, [SCRIPT, '--patch', copy], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const read = (f: string) => readFileSync(path.join(copy, f), 'utf8');
    expect(read('src/RTC/DtlsTransport.cpp')).toContain('(operationType & BIO_CB_RETURN)');
    expect(read('src/RTC/DtlsTransport.cpp')).not.toContain('(operationType == BIO_CB_RETURN)');
    expect(read('meson.build')).toContain("meson_version: '>= 1.0.0'");
    expect(read('include/RTC/SrtpSession.hpp')).toContain('srtp_remove_stream(');
    const srtp = read('src/RTC/SrtpSession.cpp');
    expect(srtp.match(/&inPlaceLen\);/g)).toHaveLength(4);
    expect(srtp).not.toMatch(/size_t\* (srtp|rtp|srtcp|rtcp)_len/);

    // Applying them again (as to another mediasoup version) fails, naming the file.
    const again = spawnSync(process.execPath, [SCRIPT, '--patch', copy], { encoding: 'utf8' });
    expect(again.status).not.toBe(0);
    expect(again.stderr).toMatch(/pattern not found in worker\/meson\.build/);
  });

  /** A project whose mediasoup cannot yield a worker: unknown version, sources that do not fit. */
  function brokenProject(): string {
    const root = scratch();
    mkdirSync(path.join(root, 'scripts'));
    cpSync(SCRIPT, path.join(root, 'scripts/mediasoup-worker.mjs'));
    const ms = path.join(root, 'node_modules/mediasoup');
    mkdirSync(path.join(ms, 'worker/subprojects'), { recursive: true });
    writeFileSync(path.join(ms, 'package.json'), JSON.stringify({ name: 'mediasoup', version: '0.0.0-test' }));
    writeFileSync(path.join(ms, 'worker/meson.build'), "project('mediasoup-worker')\n");
    return root;
  }

  const runBroken = (env: Record<string, string>) => {
    const root = brokenProject();
    return spawnSync(process.execPath, [path.join(root, 'scripts/mediasoup-worker.mjs')], {
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH,
        HOME: root,
        VOICECHAT_MEDIASOUP_CACHE: path.join(root, 'cache'),
        MEDIASOUP_SKIP_WORKER_PREBUILT_DOWNLOAD: '1',
        MEDIASOUP_WORKER_BIN: path.join(root, 'no-such-worker'),
        ...env,
      },
    });
  };

  it('without a worker it warns loudly, says why, and still exits 0', () => {
    const r = runBroken({});
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/MEDIASOUP_WORKER_BIN=.*no-such-worker does not run here/);
    expect(r.stderr).toContain('VOICE IS UNAVAILABLE');
    expect(r.stderr).toMatch(/source build: .*pattern not found in worker\/meson\.build/);
  });

  it('VOICECHAT_MEDIASOUP_STRICT=1 (CI) makes the same failure fail the install', () => {
    const r = runBroken({ VOICECHAT_MEDIASOUP_STRICT: '1' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('VOICE IS UNAVAILABLE');
  });
});
