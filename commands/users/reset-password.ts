import { Args, Flags } from '@oclif/core';
import { adminIssueResetToken } from '../../src/auth/password-reset.js';
import { BaseCommand } from '../_base.js';

export default class UsersResetPassword extends BaseCommand {
  static override summary = 'Issue a one-time password reset token (valid 1 hour) for a user.';
  static override description =
    'Hand the token (or the link, when VOICECHAT_PUBLIC_URL is set) to the user; it is shown once and stored only as a hash. Resetting revokes all of their sessions; MFA stays on.';
  static override examples = [
    '<%= config.bin %> users reset-password alice',
    '<%= config.bin %> users reset-password alice --json',
  ];
  static override args = { username: Args.string({ required: true }) };
  static override flags = { json: Flags.boolean({ summary: 'Print JSON.', default: false }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(UsersResetPassword);
    const config = this.loadConfig(flags.config);
    const out = await this.withDatabase(config, (db) => adminIssueResetToken(db, args.username, config.publicUrl));
    const expiresAt = new Date(out.expiresAt).toISOString();
    if (flags.json) {
      this.log(
        JSON.stringify(
          { username: out.user.username, token: out.token, link: out.link ?? null, expires_at: expiresAt },
          null,
          2,
        ),
      );
      return;
    }
    this.log(`One-time reset token for ${out.user.username} (expires ${expiresAt}):`);
    this.log(out.token);
    if (out.link) this.log(`Link: ${out.link}`);
    else this.log('POST it with a new password to /auth/reset-password as {"token", "new_password"}.');
  }
}
