#!/usr/bin/env node
/**
 * The project's postinstall: provides mediasoup's worker binary at the path mediasoup's Node library
 * uses by default, node_modules/mediasoup/worker/out/Release/mediasoup-worker. mediasoup's own
 * postinstall is switched off (`"allowScripts": {"mediasoup": false}` in package.json) because it
 * needs GitHub or PyPI, which many installs (ours included) cannot reach.
 *
 * Order (first that yields a worker which passes the sanity check wins):
 *   1. MEDIASOUP_WORKER_BIN, when it names a working binary (mediasoup then uses it at run time);
 *   2. a worker already in place, or one cached from an earlier build of this mediasoup version;
 *   3. mediasoup's prebuilt download (works where GitHub is reachable);
 *   4. a build of the worker sources shipped in the npm package against Debian 12's libraries, with
 *      stand-in meson subprojects and the source patches below (apt packages installed when root);
 *   5. otherwise a loud warning naming what is missing — and exit 0, so `npm install` still succeeds
 *      and the server runs text chat with voice unavailable.
 *
 * Sanity check: a worker started without mediasoup's Node library exits with code 41.
 * Environment: MEDIASOUP_WORKER_BIN, MEDIASOUP_SKIP_WORKER_PREBUILT_DOWNLOAD,
 * MEDIASOUP_WORKER_PREBUILT_DOWNLOAD_BASE_URL (mediasoup's own names), VOICECHAT_MEDIASOUP_CACHE
 * (cache folder; default $XDG_CACHE_HOME/voicechat or ~/.cache/voicechat),
 * VOICECHAT_MEDIASOUP_STRICT=1 (exit 1 instead of warning when no worker can be had).
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const env = process.env;

const log = (msg) => console.log(`[mediasoup-worker] ${msg}`);

/** Debian 12 packages the source build needs, with how each is detected. */
const BUILD_NEEDS = [
  { pkg: 'g++', program: 'g++' },
  { pkg: 'make', program: 'make' },
  { pkg: 'pkg-config', program: 'pkg-config' },
  { pkg: 'python3', program: 'python3' },
  { pkg: 'meson', program: 'meson' },
  { pkg: 'ninja-build', program: 'ninja' },
  { pkg: 'flatbuffers-compiler', program: 'flatc' },
  { pkg: 'libssl-dev', pc: 'openssl' },
  { pkg: 'libuv1-dev', pc: 'libuv' },
  { pkg: 'libsrtp2-dev', pc: 'libsrtp2' },
  { pkg: 'libusrsctp-dev', pc: 'usrsctp' },
  { pkg: 'libabsl-dev', pc: 'absl_flat_hash_map' },
  { pkg: 'libflatbuffers-dev', pc: 'flatbuffers' },
];

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.error) throw new Error(`${cmd} could not be started (${r.error.code ?? r.error.message})`);
  if (r.status !== 0) throw new Error(`\`${cmd} ${args.join(' ')}\` failed with exit code ${r.status}`);
}

/** Runs a build step quietly; on failure its output's tail is part of the error. */
function runQuiet(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { ...opts, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.error) throw new Error(`${cmd} could not be started (${r.error.code ?? r.error.message})`);
  if (r.status !== 0) {
    const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-40).join('\n');
    throw new Error(`\`${cmd} ${args.join(' ')}\` failed with exit code ${r.status}:\n${tail}`);
  }
}

const hasProgram = (name) => spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
const hasPkgConfig = (name) =>
  hasProgram('pkg-config') && spawnSync('pkg-config', ['--exists', name], { stdio: 'ignore' }).status === 0;

/** True when the binary runs on this host: mediasoup's own check (exit 41 without its Node library). */
export function workerRuns(bin) {
  if (!bin || !existsSync(bin)) return false;
  const r = spawnSync(bin, [], { stdio: 'ignore', env: {}, timeout: 10_000 });
  return r.status === 41;
}

function mediasoupDir() {
  const dir = path.join(root, 'node_modules', 'mediasoup');
  if (!existsSync(path.join(dir, 'package.json'))) return undefined;
  return dir;
}

function cacheDir() {
  if (env.VOICECHAT_MEDIASOUP_CACHE) return path.resolve(env.VOICECHAT_MEDIASOUP_CACHE);
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'voicechat');
}

/** Copies a binary into place atomically (a half-written worker must never pass for a whole one). */
function install(from, to) {
  mkdirSync(path.dirname(to), { recursive: true });
  const tmp = `${to}.tmp-${process.pid}`;
  copyFileSync(from, tmp);
  chmodSync(tmp, 0o755);
  renameSync(tmp, to);
}

async function downloadPrebuilt(pkg, target) {
  if (env.MEDIASOUP_SKIP_WORKER_PREBUILT_DOWNLOAD) {
    log('prebuilt download skipped (MEDIASOUP_SKIP_WORKER_PREBUILT_DOWNLOAD)');
    return false;
  }
  const base =
    env.MEDIASOUP_WORKER_PREBUILT_DOWNLOAD_BASE_URL ||
    `${String(pkg.repository?.url ?? 'https://github.com/versatica/mediasoup')
      .replace(/^git\+/, '')
      .replace(/\.git$/, '')}/releases/download`;
  let name = `mediasoup-worker-${pkg.version}-${os.platform()}-${os.arch()}`;
  if (os.platform() === 'linux') name += `-kernel${Number(os.release().split('.')[0])}`;
  const url = `${base}/${pkg.version}/${name}.tgz`;
  log(`trying mediasoup's prebuilt worker: ${url}`);
  let body;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
    if (!res.ok) {
      log(`no prebuilt worker (HTTP ${res.status})`);
      return false;
    }
    body = Buffer.from(await res.arrayBuffer());
  } catch (e) {
    log(`no prebuilt worker (${e.cause?.code ?? e.cause?.message ?? e.message})`);
    return false;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vc-mediasoup-prebuilt-'));
  try {
    writeFileSync(path.join(dir, 'worker.tgz'), body);
    run('tar', ['-xzf', 'worker.tgz'], { cwd: dir });
    const bin = path.join(dir, 'mediasoup-worker');
    if (!workerRuns(bin)) {
      log('the prebuilt worker does not run on this host');
      return false;
    }
    install(bin, target);
    return true;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function ensureBuildPackages() {
  const missing = () => BUILD_NEEDS.filter((n) => (n.program ? !hasProgram(n.program) : !hasPkgConfig(n.pc)));
  let lacking = missing();
  if (lacking.length === 0) return;
  const names = lacking.map((n) => n.pkg);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !hasProgram('apt-get')) {
    throw new Error(
      `the source build needs these Debian packages: ${names.join(' ')}. Install them with\n` +
        `    sudo apt-get install -y ${BUILD_NEEDS.map((n) => n.pkg).join(' ')}\n` +
        'and run `npm rebuild voicechat` (or `npm install`) again',
    );
  }
  log(`installing build packages with apt-get: ${names.join(' ')}`);
  const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
  const lock = ['-o', 'DPkg::Lock::Timeout=600'];
  run('apt-get', [...lock, 'update', '-qq'], { env: aptEnv });
  run('apt-get', [...lock, 'install', '-y', '-qq', '--no-install-recommends', ...names], { env: aptEnv });
  lacking = missing();
  if (lacking.length > 0) throw new Error(`still missing after apt-get: ${lacking.map((n) => n.pkg).join(' ')}`);
}

/**
 * libsrtp3's (mediasoup's fork) protect/unprotect calls take a separate output buffer and size_t*
 * lengths; libsrtp2 2.5 works in place with an int* length. Protecting copies the packet into the
 * encrypt buffer first (it has room for the SRTP trailer), as libsrtp3 did into its output buffer.
 */
function srtpInPlace(fn, buffer, lenVar) {
  const copy = buffer === 'encryptBuffer' ? 'std::memcpy(encryptBuffer, *data, *len);\n\t\t' : '';
  return {
    why: `libsrtp2's ${fn} works in place with an int* length`,
    file: 'src/RTC/SrtpSession.cpp',
    find: new RegExp(
      String.raw`const srtp_err_status_t err = ${fn}\(\s*/\*srtp_t ctx\*/ this->session,[^;]*?std::addressof\(${lenVar}\)(,\s*/\*size_t mki_index\*/ 0)?\);`,
    ),
    replace: `${copy}int inPlaceLen = static_cast<int>(*len);\n\t\tconst srtp_err_status_t err = ${fn}(this->session, ${buffer}, &inPlaceLen);\n\t\t${lenVar} = static_cast<size_t>(inPlaceLen);`,
  };
}

/**
 * Source changes for Debian 12's libraries. Each must find its pattern: a different mediasoup version
 * fails loudly here instead of building something subtly wrong.
 */
const PATCHES = [
  {
    why: "Debian 12's meson is 1.0.1; the build asks for >= 1.1.0 but needs nothing newer",
    file: 'meson.build',
    find: "meson_version: '>= 1.1.0'",
    replace: "meson_version: '>= 1.0.0'",
  },
  {
    why: "libsrtp2 2.5 lacks libsrtp3's srtp_err_status_buffer_small",
    file: 'src/DepLibSRTP.cpp',
    find: /\n\s*\{ srtp_err_status_buffer_small,[^\n]*/,
    replace: '',
  },
  {
    why: "libsrtp2 2.5 lacks libsrtp3's srtp_err_status_cryptex_err",
    file: 'src/DepLibSRTP.cpp',
    find: /,\n\s*\{ srtp_err_status_cryptex_err,[^\n]*\}/,
    replace: '',
  },
  {
    why: 'libsrtp2 2.5 calls it srtp_remove_stream',
    file: 'include/RTC/SrtpSession.hpp',
    find: 'srtp_stream_remove(',
    replace: 'srtp_remove_stream(',
  },
  srtpInPlace('srtp_protect', 'encryptBuffer', 'encryptLen'),
  srtpInPlace('srtp_unprotect', 'data', 'decryptLen'),
  srtpInPlace('srtp_protect_rtcp', 'encryptBuffer', 'encryptLen'),
  srtpInPlace('srtp_unprotect_rtcp', 'data', 'decryptLen'),
  {
    why: "mediasoup bug: BIO_CB_RETURN is OR-ed with the operation, so `==` is never true and every BIO ctrl query answers 1; Debian's OpenSSL (kTLS) then never allocates its write buffer and the worker dies with SIGSEGV on a real client's first DTLS record",
    file: 'src/RTC/DtlsTransport.cpp',
    find: '(operationType == BIO_CB_RETURN) ? static_cast<long>(ret) : 1',
    replace: '(operationType & BIO_CB_RETURN) ? static_cast<long>(ret) : 1',
  },
];

function applyPatches(workerDir) {
  for (const p of PATCHES) {
    const file = path.join(workerDir, p.file);
    const text = readFileSync(file, 'utf8');
    const found = typeof p.find === 'string' ? text.includes(p.find) : p.find.test(text);
    if (!found) {
      throw new Error(
        `source patch not applicable to this mediasoup version: pattern not found in worker/${p.file} (${p.why}); ` +
          'scripts/mediasoup-worker.mjs must be updated for it',
      );
    }
    writeFileSync(file, text.replace(p.find, p.replace));
  }
  log(`applied ${PATCHES.length} source patches`);
}

/**
 * The worker's meson.build calls subproject() for each library and reads named variables from it,
 * so meson's wrap options cannot point it at system libraries. Each stand-in wraps the Debian library
 * (dependency() through pkg-config) and exposes the variables the build reads; the `*_lib` variables
 * it passes to link_whole are empty lists (the system libraries are linked through the dependencies).
 */
const STAND_INS = {
  openssl: `
openssl_dep = dependency('openssl', version: '>= 3.0')
libcrypto_lib = []
libssl_lib = []
`,
  libuv: `
libuv_dep = dependency('libuv', version: '>= 1.44')
libuv = []
`,
  libsrtp3: `
_srtp = dependency('libsrtp2', version: '>= 2.5')
# The worker includes <srtp.h>; Debian installs it under srtp2/.
libsrtp3_dep = declare_dependency(
  dependencies: _srtp,
  compile_args: ['-I' + _srtp.get_variable(pkgconfig: 'includedir') / 'srtp2'],
)
libsrtp3 = []
`,
  usrsctp: `
usrsctp_dep = dependency('usrsctp')
usrsctp = []
`,
  'abseil-cpp': `
absl_container_dep = declare_dependency(dependencies: [
  dependency('absl_flat_hash_map'),
  dependency('absl_flat_hash_set'),
  dependency('absl_btree'),
  dependency('absl_inlined_vector'),
])
absl_container_lib = []
absl_strings_dep = dependency('absl_strings')
absl_types_dep = declare_dependency(dependencies: [dependency('absl_optional'), dependency('absl_variant')])
`,
  flatbuffers: `
flatbuffers_dep = dependency('flatbuffers')
flatbuffers_lib = []
`,
  // Only the worker's unit tests use Catch2, and they are not built.
  catch2: `
catch2_dep = declare_dependency()
`,
};

/** Options the worker's meson.build passes to a subproject: the stand-in must declare them (unused). */
const STAND_IN_OPTIONS = {
  libuv: ['build_tests', 'build_benchmarks'].map((o) => `option('${o}', type: 'boolean', value: false)`),
  libsrtp3: ['crypto-library', 'crypto-library-kdf', 'tests'].map((o) => `option('${o}', type: 'string', value: '')`),
  usrsctp: [`option('sctp_build_programs', type: 'boolean', value: false)`],
};

function writeStandIns(workerDir) {
  const sub = path.join(workerDir, 'subprojects');
  for (const f of readdirSync(sub)) {
    const full = path.join(sub, f);
    if (f.endsWith('.wrap') || (statSync(full).isDirectory() && f !== 'packagefiles'))
      rmSync(full, { recursive: true });
  }
  for (const [name, body] of Object.entries(STAND_INS)) {
    mkdirSync(path.join(sub, name));
    writeFileSync(
      path.join(sub, name, 'meson.build'),
      `# Stand-in written by voicechat's scripts/mediasoup-worker.mjs: Debian's library instead of a download.\nproject('${name}', ['c', 'cpp'])\n${body}`,
    );
    if (STAND_IN_OPTIONS[name]) {
      writeFileSync(path.join(sub, name, 'meson_options.txt'), `${STAND_IN_OPTIONS[name].join('\n')}\n`);
    }
  }
}

function buildFromSource(msDir, version, out) {
  ensureBuildPackages();
  const dir = mkdtempSync(path.join(os.tmpdir(), `vc-mediasoup-${version}-`));
  try {
    const workerDir = path.join(dir, 'worker');
    cpSync(path.join(msDir, 'worker'), workerDir, {
      recursive: true,
      filter: (src) => !/[\\/]worker[\\/](out|prebuild)([\\/]|$)/.test(src),
    });
    applyPatches(workerDir);
    writeStandIns(workerDir);
    const buildDir = path.join(dir, 'build');
    log(`building mediasoup-worker ${version} from the npm package's sources (a few minutes)`);
    runQuiet('meson', [
      'setup',
      buildDir,
      workerDir,
      '--buildtype',
      'release',
      '-Db_ndebug=true',
      '-Dms_disable_liburing=true',
      '--wrap-mode=nodownload',
    ]);
    // The generated FlatBuffers headers first: nothing orders them before libwebrtc's sources.
    runQuiet('meson', ['compile', '-C', buildDir, 'flatbuffers-generator']);
    runQuiet('meson', ['compile', '-C', buildDir, 'mediasoup-worker']);
    const bin = path.join(buildDir, 'mediasoup-worker');
    if (!workerRuns(bin)) throw new Error('the freshly built worker fails its sanity check (exit code 41 expected)');
    install(bin, out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function warnLoudly(reason) {
  const bar = '!'.repeat(100);
  console.warn(
    [
      '',
      bar,
      '!!! VOICE IS UNAVAILABLE: no mediasoup worker could be installed.',
      `!!! Reason: ${reason.split('\n').join('\n!!!   ')}`,
      '!!! The server still runs text chat; voice_join answers VOICE_UNAVAILABLE and /ready says why.',
      '!!! Fix the cause and run `npm rebuild voicechat`, or set MEDIASOUP_WORKER_BIN to a working',
      '!!! mediasoup-worker binary of the same mediasoup version.',
      bar,
      '',
    ].join('\n'),
  );
}

async function main() {
  const started = Date.now();
  const msDir = mediasoupDir();
  if (!msDir) {
    log('mediasoup is not installed (production install without it?); nothing to do');
    return;
  }
  const pkg = JSON.parse(readFileSync(path.join(msDir, 'package.json'), 'utf8'));
  const version = pkg.version;
  const target = path.join(msDir, 'worker', 'out', 'Release', 'mediasoup-worker');
  const done = (how) => log(`${how} (${((Date.now() - started) / 1000).toFixed(1)} s)`);

  if (env.MEDIASOUP_WORKER_BIN) {
    if (workerRuns(env.MEDIASOUP_WORKER_BIN)) {
      done(`using MEDIASOUP_WORKER_BIN=${env.MEDIASOUP_WORKER_BIN}`);
      return;
    }
    log(`MEDIASOUP_WORKER_BIN=${env.MEDIASOUP_WORKER_BIN} does not run here (exit code 41 expected); ignoring it`);
  }
  if (workerRuns(target)) {
    done(`worker already in place: ${path.relative(root, target)}`);
    return;
  }
  const cached = path.join(cacheDir(), `mediasoup-worker-${version}-${os.platform()}-${os.arch()}`);
  if (workerRuns(cached)) {
    install(cached, target);
    done(`worker ${version} copied from the cache ${cached}`);
    return;
  }
  if (existsSync(cached)) unlinkSync(cached);

  const problems = [];
  try {
    if (await downloadPrebuilt(pkg, target)) {
      done("mediasoup's prebuilt worker installed");
      return;
    }
  } catch (e) {
    problems.push(`prebuilt download: ${e.message}`);
  }
  try {
    buildFromSource(msDir, version, cached);
    install(cached, target);
    done(`worker ${version} built from source and cached at ${cached}`);
    return;
  } catch (e) {
    problems.push(`source build: ${e.message}`);
  }
  throw new Error(problems.join('\n') || 'no route produced a worker');
}

// `--patch DIR`: only apply the source patches to a copy of worker/ (to inspect or debug them).
if (process.argv[2] === '--patch') {
  applyPatches(path.resolve(process.argv[3] ?? '.'));
  process.exit(0);
}

main().catch((e) => {
  warnLoudly(e.message);
  if (env.VOICECHAT_MEDIASOUP_STRICT === '1') process.exit(1);
});
