/**
 * Robustness (SECURITY-TESTS.md "malformed input"): 10,000 random and malformed frames — bad JSON,
 * wrong types, huge numbers, deep nesting, unknown ops, prototype-pollution keys, binary — against one
 * server. Every frame is answered (error reply, event or close), the server never crashes, and another
 * client keeps receiving events throughout. The generator is seeded, so a failure is reproducible.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.js';
import { type GuildFixture, seedGuild } from '../support/guilds.js';
import { useTestServer } from '../support/server.js';
import { GatewayClient } from '../support/ws.js';

function mulberry32(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeFrames(count: number, seed: number, channelId: string): (string | Buffer)[] {
  const rnd = mulberry32(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: T[]): T => xs[int(xs.length)] as T;
  const randomText = (n: number) => {
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(int(0xd7ff) + 1);
    return s;
  };
  const weird = () =>
    pick<unknown>([
      null,
      true,
      -1,
      0,
      1e308,
      -1e308,
      2 ** 64,
      Number.MAX_SAFE_INTEGER + 2,
      '',
      'x'.repeat(int(5000)),
      [],
      {},
      { $gt: '' },
      [1, [2, [3]]],
      '\u0000\u202e',
      "' OR 1=1 --",
      '<script>alert(1)</script>',
    ]);
  const ops = ['ping', 'typing', 'presence', 'resume', 'voice_join', 'identify', '__proto__', 'constructor', ''];
  const makers: (() => string | Buffer)[] = [
    () => randomText(1 + int(200)),
    () => JSON.stringify({ type: pick(ops), request_id: `f${int(1e6)}`, data: weird() }),
    () => JSON.stringify({ type: 'typing', request_id: `t${int(1e6)}`, data: { channel_id: weird() } }),
    () => JSON.stringify({ type: 'typing', request_id: `v${int(1e6)}`, data: { channel_id: channelId } }),
    () => JSON.stringify({ type: 'resume', request_id: `r${int(1e6)}`, data: { session_id: weird(), seq: weird() } }),
    () => JSON.stringify({ type: 'presence', request_id: `p${int(1e6)}`, data: { status: weird() } }),
    () => `{"type":"resume","request_id":"h${int(1e6)}","data":{"session_id":"x","seq":1e999}}`,
    () => `${'['.repeat(1000 + int(20000))}${']'.repeat(int(2) ? 0 : 20000)}`,
    () => `${'{"a":'.repeat(1000 + int(5000))}1${'}'.repeat(int(3000))}`,
    () => `{"__proto__":{"polluted":true},"type":"ping","request_id":"pp${int(1e6)}"}`,
    () => JSON.stringify({ type: 'ping', request_id: weird() }),
    () => JSON.stringify(weird()),
    () => JSON.stringify({ type: 'ping', request_id: `ok${int(1e6)}`, data: {} }),
    () => JSON.stringify({ type: 'ping', request_id: 'extra', data: {}, extra: weird() }),
    () => `{"type":"ping","request_id":"dup","type":"typing"}`,
    () => Buffer.from(Array.from({ length: 1 + int(300) }, () => int(256))),
    () => '{"type":"ping"'.slice(0, int(14)),
    () => `"${'\\u'.repeat(int(50))}"`,
  ];
  return Array.from({ length: count }, () => pick(makers)());
}

describe('gateway fuzz', () => {
  let g: GuildFixture;
  // Thousands of reconnects from one IP: raise the limits (all stay on; 4002 after 10 bad frames is not scaled).
  const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '1000', VOICECHAT_LOG_LEVEL: 'warn' });
  beforeAll(async () => {
    g = await seedGuild(server);
  });

  it('survives 10,000 malformed frames while another client keeps receiving', async () => {
    const frames = makeFrames(10_000, 20261127, g.textChannelId);
    const watcher = await GatewayClient.ready(server.wsUrl, g.owner.accessToken);
    let client = (await GatewayClient.ready(server.wsUrl, g.member.accessToken)).client;
    let closedCount = 0;
    const codes = new Map<number, number>();
    let answered = 0;

    for (let i = 0; i < frames.length; i++) {
      if (client.ws.readyState !== client.ws.OPEN) {
        const { code } = await client.closed;
        codes.set(code, (codes.get(code) ?? 0) + 1);
        closedCount++;
        client = (await GatewayClient.ready(server.wsUrl, g.member.accessToken)).client;
      }
      const before = client.frames.length;
      const c = client;
      client.send(frames[i]);
      // Every frame gets an answer: a reply, an event (pong) or the close.
      await Promise.race([c.next((_f) => c.frames.length > before, 10_000), c.closed]);
      if (c.frames.length > before) answered++;

      if (i % 1000 === 999) {
        const marker = `alive-${i}`;
        server.app.bus.publish({
          kind: 'dispatch',
          topic: `channel:${g.textChannelId}`,
          type: 'message_new',
          data: { id: newId(), content: marker },
        });
        await watcher.client.event('message_new', (d) => d.content === marker);
      }
    }
    expect(answered + closedCount).toBeGreaterThanOrEqual(frames.length - 1);
    expect(closedCount).toBeGreaterThan(100); // the 4002 rule really fired
    expect(codes.get(4002)).toBeGreaterThan(100);
    // The server is healthy, and a normal op still works on a fresh socket and the watcher.
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect((await watcher.client.request('ping')).ok).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    client.close();
    watcher.client.close();
  }, 120_000);
});
