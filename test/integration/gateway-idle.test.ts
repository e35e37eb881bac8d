/**
 * Idle timeout (DESIGN.md §7): a connection silent for two heartbeat intervals is closed, one that
 * heartbeats stays open, and one late heartbeat is not enough to be dropped. With the shortest
 * heartbeat the setting allows (4 s), two intervals are 8 s; uWS checks timeouts on a 4 s tick, so the
 * silent socket must close between 8 and 12 s after it opened (not before 8: that would drop a client
 * that missed one heartbeat), and uWS drops it without a close frame (1006). About 13 s.
 */
import { describe, expect, it } from 'vitest';
import { createUser } from '../support/factories.js';
import { useTestServer } from '../support/server.js';
import { GatewayClient } from '../support/ws.js';

describe('gateway idle timeout', () => {
  const server = useTestServer({ VOICECHAT_GATEWAY_HEARTBEAT_MS: '4000' });

  it('closes a socket silent for two heartbeat intervals, never one still heartbeating', async () => {
    const u = await createUser(server);
    const silent = await GatewayClient.connect(server.wsUrl, u.accessToken);
    const opened = Date.now();
    const alive = await GatewayClient.ready(server.wsUrl, u.accessToken);
    expect(alive.ready.data.heartbeat_interval_ms).toBe(4000);
    // Every interval, but each 1.9 s late: a gap of almost two intervals is tolerated.
    const beat = setInterval(() => alive.client.send({ type: 'ping' }), 4000 + 1900);
    try {
      const closed = await silent.closed;
      const after = Date.now() - opened;
      expect(closed.code).toBe(1006);
      expect(after).toBeGreaterThanOrEqual(7800);
      expect(after).toBeLessThan(12_000 + 1000);
      const stillOpenAt = Date.now();
      await new Promise((r) => setTimeout(r, Math.max(0, opened + 13_000 - stillOpenAt)));
      expect((await alive.client.request('ping')).ok).toBe(true);
      expect(alive.client.ws.readyState).toBe(alive.client.ws.OPEN);
    } finally {
      clearInterval(beat);
      alive.client.close();
    }
  }, 30_000);
});
