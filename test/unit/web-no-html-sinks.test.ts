/**
 * The browser client never writes HTML from strings: no innerHTML, outerHTML,
 * dangerouslySetInnerHTML, insertAdjacentHTML, document.write or string eval anywhere in web/.
 * (Trusted Types would refuse them at run time; this keeps them out of the source.)
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web');
const SINKS =
  /\b(innerHTML|outerHTML|dangerouslySetInnerHTML|insertAdjacentHTML|document\.write(ln)?|new Function|eval)\s*[(=:]?/;

const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((n) => {
    const full = path.join(dir, n);
    return statSync(full).isDirectory() ? files(full) : /\.(tsx?|html|js)$/.test(n) ? [full] : [];
  });

it('web/ holds no HTML or script sink', () => {
  const all = files(WEB);
  expect(all.length).toBeGreaterThan(10);
  const hits = all.flatMap((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .map((line, i) => ({ line, at: `${path.relative(WEB, f)}:${i + 1}` }))
      .filter(({ line }) => SINKS.test(line) && !line.trim().startsWith('*') && !line.trim().startsWith('//'))
      .map(({ at, line }) => `${at}: ${line.trim()}`),
  );
  expect(hits).toEqual([]);
});
