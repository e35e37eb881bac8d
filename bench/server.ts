/**
 * Bench helper: runs one VoiceChat server in its own process (so the load generator does not share
 * its event loop) from VOICECHAT_* variables, and prints `{"port": n}` once listening.
 */
import { createApp } from '../src/app/create-app.js';
import { loadConfig } from '../src/config/index.js';
import { createLogger } from '../src/logger.js';

async function main() {
  const config = loadConfig({ env: process.env as Record<string, string> });
  const app = await createApp(config, { logger: createLogger('warn') });
  const { port } = await app.start();
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  const stop = () => void app.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

void main();
