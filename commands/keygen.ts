import { Flags } from '@oclif/core';
import { Keyring, PURPOSES } from '../src/crypto/keyring.js';
import { randomKeyHex } from '../src/crypto/random.js';
import { BaseCommand, CliError, EXIT } from './_base.js';

export default class Keygen extends BaseCommand {
  static override summary = 'Print a new random 32-byte key as 64 hex characters, or add one to the keyring.';
  static override description =
    `Without flags, prints a fresh key (what \`openssl rand -hex 32\` gives), suitable for JWT_SECRET, MFA_ENCRYPTION_KEY or MEGOLM_ENCRYPTION_KEY.

With --purpose and --add, appends a new key to the keyring (keys.json) in state decrypt-only and prints its id; the active key is unchanged (rotate-keys activates it). The key itself is not printed then.`;
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --purpose mfa --add',
    '<%= config.bin %> <%= command.id %> --purpose jwt --add --config /etc/voicechat/voicechat.env --json',
  ];
  static override flags = {
    purpose: Flags.string({ summary: 'Key purpose.', options: [...PURPOSES] }),
    add: Flags.boolean({ summary: 'Append the key to the keyring as decrypt-only.', default: false }),
    json: Flags.boolean({ summary: 'Print JSON.', default: false }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Keygen);
    if (!flags.add) {
      if (flags.purpose) throw new CliError('--purpose only makes sense with --add', EXIT.usage);
      const key = randomKeyHex();
      this.log(flags.json ? JSON.stringify({ key }) : key);
      return;
    }
    if (!flags.purpose) throw new CliError('--add needs --purpose jwt|mfa|megolm', EXIT.usage);
    const purpose = flags.purpose as (typeof PURPOSES)[number];
    const config = this.loadConfig(flags.config);
    // The file's own keys, without environment overrides: those must never be written to disk.
    const { keyring, entry } = Keyring.load(config.keyringFile).withAddedKey(purpose);
    keyring.save(config.keyringFile);
    if (flags.json) {
      this.log(JSON.stringify({ id: entry.id, purpose, state: entry.state, keyring: config.keyringFile }));
    } else {
      this.log(entry.id);
      this.logToStderr(`Added ${purpose} key ${entry.id} (decrypt-only) to ${config.keyringFile}.`);
    }
  }
}
