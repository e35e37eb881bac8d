/**
 * Outgoing mail for password resets: SMTP through nodemailer when VOICECHAT_SMTP_URL is set. Without
 * it there is no mailer, and the admin issues reset tokens with `voicechat users reset-password`.
 */
import { createRequire } from 'node:module';
import type { Config } from '../config/index.js';

export interface Mailer {
  send(message: { to: string; subject: string; text: string }): Promise<void>;
  close(): void;
}

export function createMailer(config: Pick<Config, 'smtpUrl' | 'smtpFrom' | 'publicUrl'>): Mailer | undefined {
  if (!config.smtpUrl) return undefined;
  // Loaded only when SMTP is configured: most installs never send mail, and it weighs ~14 MB of RSS.
  const nodemailer = createRequire(import.meta.url)('nodemailer') as typeof import('nodemailer');
  const transport = nodemailer.createTransport(config.smtpUrl);
  const host = config.publicUrl ? new URL(config.publicUrl).hostname : 'localhost';
  const from = config.smtpFrom ?? `VoiceChat <no-reply@${host}>`;
  return {
    async send(m) {
      await transport.sendMail({ from, to: m.to, subject: m.subject, text: m.text });
    },
    close() {
      transport.close();
    },
  };
}
