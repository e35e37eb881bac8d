/**
 * Idle timeout (DESIGN.md §7): a connection silent for two heartbeat intervals is closed, one that
 * heartbeats stays open. Uses the shortest heartbeat the setting allows (4 s → idle 8 s; uWS checks
 * timeouts every 4 s), so this file takes about 12 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser } from '../support/factories.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { GatewayClient } from '../support/ws.js';

describe('gateway idle timeout', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { VOICECHAT_GATEWAY_HEARTBEAT_MS: '4000' } });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('closes a silent connection after two heartbeat intervals and keeps a heartbeating one', async () => {
    const u = await createUser(server);
    const silent = await GatewayClient.ready(server.wsUrl, u.accessToken);
    const alive = await GatewayClient.ready(server.wsUrl, u.accessToken);
    expect(silent.ready.data.heartbeat_interval_ms).toBe(4000);
    const started = Date.now();
    const beat = setInterval(() => alive.client.send({ type: 'ping' }), 2000);
    try {
      const closed = await silent.client.closed;
      const after = Date.now() - started;
      expect(after).toBeGreaterThanOrEqual(4000); // more than one interval (uWS rounds to its 4 s ticks)
      expect(after).toBeLessThan(14_000);
      expect([1000, 1001, 1006]).toContain(closed.code);
      expect((await alive.client.request('ping')).ok).toBe(true);
    } finally {
      clearInterval(beat);
      alive.client.close();
    }
  }, 30_000);
});
