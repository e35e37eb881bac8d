/**
 * A whole server node in its own process (run under tsx by `startNodeProcess`): createApp from the
 * environment it was given, listen, report the port over IPC, and obey `publish` (a bus message, as a
 * REST mutation would publish after its commit) and `stop` messages.
 */
import { createApp } from '../../src/app/create-app.js';
import { loadConfig } from '../../src/config/index.js';
import type { BusMessage } from '../../src/events/bus.js';

const config = loadConfig({ env: process.env as Record<string, string> });
const app = await createApp(config);
const { port } = await app.start();
process.send?.({ type: 'listening', port });
process.on('message', (m: { type: string; message?: BusMessage }) => {
  if (m.type === 'publish' && m.message) app.ctx.bus.publish(m.message);
  if (m.type === 'stats')
    process.send?.({ type: 'stats', rss: process.memoryUsage().rss, connections: app.gateway.connectionCount });
  if (m.type === 'stop') void app.stop().then(() => process.exit(0));
});
process.on('disconnect', () => void app.stop().then(() => process.exit(0)));
