import { Flags } from '@oclif/core';
import { type KeyPurpose, loadKeyring, PURPOSES } from '../src/crypto/keyring.js';
import { connectNotifier } from '../src/keys/notify.js';
import {
  type PurgeOutcome,
  type PurposeOutcome,
  purgeRetiredKeys,
  RotationRefused,
  rotateKeys,
} from '../src/keys/rotation.js';
import { BaseCommand, CliError, EXIT } from './_base.js';
import { progressBar } from './_progress.js';

export default class RotateKeys extends BaseCommand {
  static override summary =
    'Rotate encryption and signing keys online: activate the staged key, re-encrypt, verify, retire.';
  static override description =
    `For each purpose: the staged next key (added by init, install.sh or \`keygen --purpose P --add\`, and loaded by every running node) becomes active through the database, so running servers switch without a restart; every stored value is re-encrypted in batches (one transaction each, progress kept in the database: a killed run resumes where it stopped); every value is verified under the new key; then the old key is retired (kept 90 days for decryption; --purge drops older ones). JWT: new tokens are signed with the new key at once; tokens signed before keep working until they expire.

With no staged key, the command stages one, says which service to restart, and exits 4 without rotating. Audited as keys.rotate (key ids and counts, never key material).`;
  static override examples = [
    '<%= config.bin %> <%= command.id %> --purpose mfa',
    '<%= config.bin %> <%= command.id %> --purpose all --dry-run',
    '<%= config.bin %> <%= command.id %> --purpose megolm --batch 5000 --json',
    '<%= config.bin %> <%= command.id %> --purge',
  ];
  static override flags = {
    purpose: Flags.string({ summary: 'mfa, megolm, jwt or all.', default: 'all' }),
    batch: Flags.integer({ summary: 'Rows per transaction.', default: 1000 }),
    'dry-run': Flags.boolean({ summary: 'Report what would happen; change nothing.', default: false }),
    purge: Flags.boolean({
      summary: 'Drop retired keys older than 90 days from the keyring (instead of rotating).',
      default: false,
    }),
    json: Flags.boolean({ summary: 'Print JSON.', default: false }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(RotateKeys);
    const purposes = parsePurpose(flags.purpose);
    if (flags.batch < 1 || flags.batch > 100_000) throw new CliError('--batch must be from 1 to 100000', EXIT.usage);
    const config = this.loadConfig(flags.config);
    const keyring = loadKeyring(config);
    type Result = { purged: PurgeOutcome[] } | { rotated: PurposeOutcome[] };
    const result = await this.withDatabase(config, async (db): Promise<Result> => {
      try {
        if (flags.purge)
          return {
            purged: await purgeRetiredKeys(
              { db, keyring, keyringFile: config.keyringFile },
              purposes,
              flags['dry-run'],
            ),
          };
        const notifier = await connectNotifier(config);
        const bar = progressBar(flags.json);
        try {
          return {
            rotated: await rotateKeys(
              { db, keyring, keyringFile: config.keyringFile, notify: () => notifier.notify() },
              {
                purposes,
                batch: flags.batch,
                dryRun: flags['dry-run'],
                onProgress: (p) => bar?.update(`${p.purpose} ${p.phase}`, p.done, p.total),
              },
            ),
          };
        } finally {
          bar?.stop();
          notifier.close();
        }
      } catch (e) {
        if (e instanceof RotationRefused) throw new CliError(e.message, EXIT.refused);
        throw e;
      }
    });
    if ('purged' in result) return this.renderPurge(result.purged, flags.json, flags['dry-run']);
    this.renderRotation(result.rotated, flags.json);
    const staged = result.rotated.find((o) => o.status === 'staged' && !flags['dry-run']);
    if (staged) throw new CliError(staged.message as string, EXIT.refused);
  }

  renderRotation(outcomes: PurposeOutcome[], json: boolean): void {
    if (json) {
      this.log(JSON.stringify(outcomes, null, 2));
      return;
    }
    for (const o of outcomes) {
      const line = `${o.purpose.padEnd(6)}  ${o.status.padEnd(12)}  ${o.from_key_id ?? '-'} → ${o.to_key_id}`;
      if (o.status === 'would-rotate') {
        const counts = Object.entries(o.by_key ?? {})
          .map(([k, n]) => `${n} under ${k}`)
          .join(', ');
        this.log(`${line}  (${counts || 'no stored values'})`);
      } else if (o.status === 'staged') {
        this.log(line);
      } else {
        this.log(
          `${line}  re-encrypted ${o.reencrypted}, verified ${o.verified}; ${o.from_key_id ?? 'old key'} retired`,
        );
      }
      if (o.message && o.status !== 'staged') this.log(`        ${o.message}`);
    }
  }

  renderPurge(purged: PurgeOutcome[], json: boolean, dryRun: boolean): void {
    if (json) {
      this.log(JSON.stringify(purged, null, 2));
      return;
    }
    for (const p of purged) {
      this.log(
        `${p.purpose.padEnd(6)}  ${p.removed.length === 0 ? 'nothing to purge' : `${dryRun ? 'would remove' : 'removed'} ${p.removed.join(', ')}`}`,
      );
    }
  }
}

function parsePurpose(value: string): KeyPurpose[] {
  if (value === 'all') return [...PURPOSES];
  if ((PURPOSES as readonly string[]).includes(value)) return [value as KeyPurpose];
  throw new CliError(`unknown purpose "${value}" (expected mfa, megolm, jwt or all)`, EXIT.usage);
}
