/**
 * A whole server node in its own process (run under tsx by `startNodeProcess`): createApp from the
 * environment it was given, listen, report the port over IPC, and obey `publish` (a bus message, as a
 * REST mutation would publish after its commit), `burst` (benchmark), `stats` and `stop` messages.
 */
import { createApp } from '../../src/app/create-app.js';
import { loadConfig } from '../../src/config/index.js';
import { openMegolmSessionData } from '../../src/crypto/megolm.js';
import type { BusMessage } from '../../src/events/bus.js';

const config = loadConfig({ env: process.env as Record<string, string> });
const app = await createApp(config);
const { port } = await app.start();
process.send?.({ type: 'listening', port });
process.on('message', (m: { type: string; message?: BusMessage; count?: number; ack?: boolean }) => {
  if (m.type === 'publish' && m.message) {
    app.bus.publish(m.message);
    if (m.ack) process.send?.({ type: 'ack' });
  }
  // Benchmark hook: `count` copies of a dispatch in one loop, data.n = 0…count-1 (a publish burst).
  if (m.type === 'burst' && m.message?.kind === 'dispatch') {
    const base = m.message;
    for (let n = 0; n < (m.count ?? 0); n++) app.bus.publish({ ...base, data: { ...(base.data as object), n } });
  }
  if (m.type === 'stats') {
    // Steady state: collect garbage first when the benchmark started us with --expose-gc.
    (globalThis as { gc?: () => void }).gc?.();
    process.send?.({ type: 'stats', ...process.memoryUsage(), connections: app.gateway.connectionCount });
  }
  // Megolm reads through this node's live keyring: the decrypt function the E2EE endpoints use.
  if (m.type === 'megolm-read') {
    void (async () => {
      const rows = await app.ctx
        .db('megolm_sessions')
        .orderByRaw('random()')
        .limit(m.count ?? 50);
      let failed = 0;
      for (const r of rows) {
        try {
          openMegolmSessionData(app.ctx.keyring, r.channel_id, r.session_id, r.session_data);
        } catch {
          failed++;
        }
      }
      process.send?.({ type: 'megolm-read', read: rows.length, failed, active: app.ctx.keyring.active('megolm').id });
    })();
  }
  if (m.type === 'stop') void app.stop().then(() => process.exit(0));
});
process.on('disconnect', () => void app.stop().then(() => process.exit(0)));
