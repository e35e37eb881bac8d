/**
 * Bounded memory (SECURITY-TESTS.md): a client that stops reading its TCP socket is cut off once the
 * server buffers more than 1 MiB for it (close 4008, counted in the slow-consumer metric), while a
 * normal client on the same channel keeps receiving every event.
 */
import type { Socket } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.js';
import type { TestUser } from '../support/factories.js';
import { type GuildFixture, seedGuild } from '../support/guilds.js';
import { useTestServer } from '../support/server.js';
import { GatewayClient } from '../support/ws.js';

describe('gateway backpressure', () => {
  let fast: TestUser;
  let slow: TestUser;
  let g: GuildFixture;
  const server = useTestServer();
  beforeAll(async () => {
    g = await seedGuild(server);
    ({ owner: fast, member: slow } = g);
  });

  it('closes a consumer that never reads at the 1 MiB cap (4008) while others keep receiving', async () => {
    const normal = await GatewayClient.ready(server.wsUrl, fast.accessToken);
    const stuck = await GatewayClient.ready(server.wsUrl, slow.accessToken);
    const raw = (stuck.client.ws as unknown as { _socket: Socket })._socket;
    raw.pause(); // stop reading: the kernel buffers fill, then the server's
    const slowMetric = async () => (await server.ctx.metrics.gatewaySlowConsumers.get()).values[0]?.value ?? 0;
    const before = server.app.gateway.connectionCount;

    const pad = 'x'.repeat(60_000);
    let sent = 0;
    for (let batch = 0; batch < 400 && (await slowMetric()) === 0; batch++) {
      for (let i = 0; i < 20; i++) {
        server.app.bus.publish({
          kind: 'dispatch',
          topic: `channel:${g.textChannelId}`,
          type: 'message_new',
          data: { id: newId(), n: sent++, pad },
        });
      }
      await normal.client.event('message_new', (d) => d.n === sent - 1);
    }
    expect(await slowMetric()).toBe(1);
    expect(server.app.gateway.connectionCount).toBe(before - 1);

    // The normal client got every event, in order, and keeps receiving.
    const ns = normal.client.events('message_new').map((f) => f.data.n);
    expect(ns).toEqual(Array.from({ length: sent }, (_, i) => i));
    server.app.bus.publish({
      kind: 'dispatch',
      topic: `channel:${g.textChannelId}`,
      type: 'message_new',
      data: { id: newId(), n: 'after' },
    });
    await normal.client.event('message_new', (d) => d.n === 'after');

    // Once it reads again, the slow client drains what was buffered and finds the 4008 close.
    raw.resume();
    const closed = await stuck.client.closed;
    expect(closed.code).toBe(4008);
    const got = stuck.client.events('message_new').length;
    expect(got).toBeLessThan(sent);
    normal.client.close();
  }, 60_000);
});
