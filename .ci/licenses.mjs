#!/usr/bin/env node
// Fails when a production dependency's license is not on the allow list (no GPL/AGPL/LGPL).
// SPDX expressions: an OR is fine when any branch is allowed; an AND needs every part allowed.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const ALLOWED = [
  /^MIT(-0)?$/,
  /^Apache-2\.0$/,
  /^BSD-[0-9]-Clause(-.+)?$/,
  /^BSD$/,
  /^ISC$/,
  /^Zlib$/,
  /^MPL-2\.0$/,
  /^0BSD$/,
  /^BlueOak-1\.0\.0$/,
  /^CC0-1\.0$/,
  /^Unlicense$/,
  /^Python-2\.0$/,
];
// Packages whose package.json has no license field, reviewed by hand (name@version, so an upgrade is
// reviewed again): the license file's text and what it is.
const REVIEWED = {
  'thirty-two@1.0.2': 'MIT (LICENSE.txt: "Permission is hereby granted, free of charge", Chris Umbel 2011)',
};
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

let listing;
try {
  listing = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: root, encoding: 'utf8' });
} catch (e) {
  // npm ls exits non-zero on extraneous/invalid trees but still prints the tree.
  listing = e.stdout ?? '';
}
const dirs = [...new Set(listing.split('\n').filter((l) => l && l !== root))];
if (dirs.length === 0) {
  console.error('license check: npm ls listed no production dependencies (is node_modules installed?)');
  process.exit(1);
}

function licenseOf(pkg) {
  if (typeof pkg.license === 'string') return pkg.license;
  if (pkg.license && typeof pkg.license.type === 'string') return pkg.license.type;
  if (Array.isArray(pkg.licenses)) return pkg.licenses.map((l) => l.type ?? l).join(' OR ');
  return undefined;
}

const allowedId = (id) => ALLOWED.some((re) => re.test(id.trim().replace(/\+$/, '')));
function allowed(expr) {
  const e = expr.trim().replace(/^\((.*)\)$/, '$1');
  if (/\bOR\b/.test(e)) return e.split(/\bOR\b/).some(allowed);
  if (/\bAND\b/.test(e)) return e.split(/\bAND\b/).every(allowed);
  return allowedId(e.replace(/[()]/g, ''));
}

const bad = [];
const seen = new Map();
for (const dir of dirs) {
  let pkg;
  try {
    pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
  } catch {
    continue; // npm ls can list a missing optional dependency
  }
  const license = licenseOf(pkg);
  const name = `${pkg.name}@${pkg.version}`;
  seen.set(license ?? 'UNKNOWN', (seen.get(license ?? 'UNKNOWN') ?? 0) + 1);
  if (!license && REVIEWED[name]) continue;
  if (!license || !allowed(license))
    bad.push(`${name}: ${license ?? 'no license field'} (${path.relative(root, dir)})`);
}

const summary = [...seen.entries()].sort((a, b) => b[1] - a[1]).map(([l, n]) => `${l} ×${n}`);
console.log(`license check: ${dirs.length} production packages: ${summary.join(', ')}`);
if (bad.length) {
  console.error(`license check FAILED: ${bad.length} production dependencies are not on the allow list:`);
  for (const b of bad) console.error(`  ${b}`);
  process.exit(1);
}
console.log('license check: OK (no GPL/AGPL/LGPL or unknown licenses in production dependencies)');
