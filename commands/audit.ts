import { Flags } from '@oclif/core';
import { type AuditListing, listAudit, verifyAuditChain } from '../src/audit/service.js';
import { checkPosture, type PostureCheck } from '../src/posture/posture.js';
import { BaseCommand, CliError, EXIT } from './_base.js';
import { progressBar } from './_progress.js';

export default class Audit extends BaseCommand {
  static override summary =
    'Read the audit log, verify its hash chain, or check the security posture of this installation.';
  static override description =
    `Lists audit rows newest first (a table, or --json: an array of rows with every column). Filters: --user (username or user id), --action (exact, or a prefix like admin.*), --since/--until (ISO-8601 date or time, or a span back from now such as 24h or 7d), --limit.

--verify walks the whole hash chain (from the newest retention checkpoint, if the log was pruned) and prints "chain intact, N rows", or names the first broken row and exits 1.

--posture checks the installation — keyring mode and owner, key ages and staged next keys, TLS or proxy for the public URL, registration mode, Argon2 parameters, pending migrations, the audit chain, config file mode, service user — one line each (ok / warn / fail); exit 1 when any check fails.`;
  static override examples = [
    '<%= config.bin %> <%= command.id %> --since 24h',
    '<%= config.bin %> <%= command.id %> --user alice --action auth.* --limit 20',
    '<%= config.bin %> <%= command.id %> --action keys.rotate --json',
    '<%= config.bin %> <%= command.id %> --verify',
    '<%= config.bin %> <%= command.id %> --posture --json',
  ];
  static override flags = {
    user: Flags.string({ summary: 'Only rows of this user (username or id).' }),
    action: Flags.string({ summary: 'Only this action, or a prefix ending in .* (e.g. auth.*).' }),
    since: Flags.string({ summary: 'Rows at or after this time (ISO-8601, or 24h / 7d back from now).' }),
    until: Flags.string({ summary: 'Rows before this time (ISO-8601, or a span back from now).' }),
    limit: Flags.integer({ summary: 'At most this many rows (newest first).', default: 100 }),
    json: Flags.boolean({ summary: 'Print JSON.', default: false }),
    verify: Flags.boolean({ summary: 'Verify the hash chain.', default: false, exclusive: ['posture'] }),
    posture: Flags.boolean({ summary: 'Security self-check of the installation.', default: false }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Audit);
    if (flags.limit < 1 || flags.limit > 1_000_000) throw new CliError('--limit must be from 1 to 1000000', EXIT.usage);
    const config = this.loadConfig(flags.config);
    if (flags.posture) {
      const checks = await this.withDatabase(config, (db) => checkPosture(config, db), { allowPending: true });
      this.renderPosture(checks, flags.json);
      const failed = checks.filter((c) => c.level === 'fail');
      if (failed.length > 0)
        throw new CliError(`${failed.length} posture check(s) failed: ${failed.map((c) => c.check).join(', ')}`);
      return;
    }
    if (flags.verify) {
      const bar = progressBar(flags.json);
      const v = await this.withDatabase(config, (db) =>
        verifyAuditChain(db, { onProgress: (n) => bar?.update('audit verify', n, n) }),
      );
      bar?.stop();
      if (flags.json) this.log(JSON.stringify(v));
      else if (v.ok)
        this.log(
          `chain intact, ${v.rows} rows${v.firstId && v.firstId > 1 ? ` (from row ${v.firstId}, after a retention checkpoint)` : ''}`,
        );
      if (!v.ok)
        throw new CliError(`audit chain broken at row ${v.brokenAt}: ${v.reason} (${v.rows} rows verified before it)`);
      return;
    }
    const rows = await this.withDatabase(config, (db) =>
      listAudit(db, {
        user: flags.user,
        action: flags.action,
        since: flags.since,
        until: flags.until,
        limit: flags.limit,
      }),
    );
    if (flags.json) {
      this.log(JSON.stringify(rows, null, 2));
      return;
    }
    this.renderTable(rows);
  }

  renderTable(rows: AuditListing[]): void {
    if (rows.length === 0) {
      this.log('No audit rows match.');
      return;
    }
    const cells = rows.map((r) => [
      String(r.id),
      r.created_at.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
      r.action,
      r.user_id ?? '-',
      r.resource_type ? `${r.resource_type}:${r.resource_id ?? ''}` : '-',
      r.ip_address ?? '-',
      JSON.stringify(r.metadata),
    ]);
    const head = ['ID', 'TIME', 'ACTION', 'USER', 'RESOURCE', 'IP', 'METADATA'];
    const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)));
    const fmt = (c: string[]) => c.map((v, i) => (i < c.length - 1 ? v.padEnd(widths[i] as number) : v)).join('  ');
    this.log(fmt(head));
    for (const c of cells) this.log(fmt(c));
  }

  renderPosture(checks: PostureCheck[], json: boolean): void {
    if (json) {
      this.log(JSON.stringify(checks, null, 2));
      return;
    }
    const width = Math.max(...checks.map((c) => c.check.length));
    for (const c of checks) this.log(`${c.level.padEnd(4)}  ${c.check.padEnd(width)}  ${c.detail}`);
  }
}
