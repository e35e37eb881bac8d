/** Every service unit in systemd/ scores 2.0 or lower in `systemd-analyze security --offline=true`. */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/cli.js';

const dir = path.join(ROOT, 'systemd');
const services = readdirSync(dir).filter((f) => f.endsWith('.service'));

describe('systemd units', () => {
  it('there are units to check (server and nightly backup), and a timer for the backup', () => {
    expect(services.sort()).toEqual(['voicechat-backup.service', 'voicechat.service']);
    expect(readFileSync(path.join(dir, 'voicechat-backup.timer'), 'utf8')).toMatch(/^OnCalendar=/m);
    const unit = readFileSync(path.join(dir, 'voicechat.service'), 'utf8');
    expect(unit).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    // Kept by measurement (docs/decisions.md, Operations).
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/node --max-semi-space-size=2 /m);
  });

  for (const unit of services) {
    it(`${unit}: systemd-analyze security exposure ≤ 2.0`, () => {
      const out = execFileSync('systemd-analyze', ['security', '--offline=true', '--no-pager', path.join(dir, unit)], {
        encoding: 'utf8',
      });
      const m = /Overall exposure level for \S+: (\d+\.\d+)/.exec(out);
      expect(m, out).not.toBeNull();
      expect(Number(m?.[1])).toBeLessThanOrEqual(2.0);
    });
  }
});
