/**
 * The typed boundaries of the realtime kernel, checked by the compiler (`npm run typecheck` covers
 * tests: every `@ts-expect-error` below must be an error) and at run time: the Outbox publishes only
 * EventMap events with their payloads, in its documented order, and only on flush; an op handler map
 * must cover the op union exactly.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type BusMessage, LocalEventBus } from '../../src/events/bus.js';
import type { ClientConnection } from '../../src/events/connection.js';
import { EventHub } from '../../src/events/hub.js';
import { type OpHandlers, op } from '../../src/events/ops.js';
import { createLogger } from '../../src/logger.js';

const channel = {
  id: 'c1',
  guild_id: 'g1',
  type: 'text',
  name: 'general',
  topic: null,
  position: 0,
  user_limit: null,
  e2ee_voice: false,
  created_at: null,
};

describe('Outbox', () => {
  it('publishes typed events in order, only on flush, with the channel ordering rules', () => {
    const bus = new LocalEventBus(createLogger('silent'));
    const seen: BusMessage[] = [];
    bus.subscribe((m) => seen.push(m));
    const out = new EventHub(bus).outbox();
    out.channelCreated('g1', channel).toGuild('g1', 'member_leave', { guild_id: 'g1', user_id: 'u1' });
    out.channelDeleted('g1', 'c1');
    expect(seen).toEqual([]);
    out.flush();
    expect(seen.map((m) => (m.kind === 'dispatch' ? `${m.type}@${m.topic}` : m.kind))).toEqual([
      'access_changed',
      'channel_create@channel:c1',
      'member_leave@guild:g1',
      'channel_delete@channel:c1',
      'access_changed',
    ]);
    out.flush();
    expect(seen).toHaveLength(5);
  });

  it('refuses unknown events and wrong payloads at compile time', () => {
    const out = new EventHub(new LocalEventBus(createLogger('silent'))).outbox();
    // @ts-expect-error not an event of the EventMap
    out.toChannel('c1', 'message_nwe', {});
    // @ts-expect-error member_leave carries {guild_id, user_id}
    out.toGuild('g1', 'member_leave', { id: 'x' });
    // @ts-expect-error topics are user:, guild: or channel:
    out.to('room:1', 'pong', {});
    expect(true).toBe(true);
  });
});

describe('op handler maps', () => {
  const OPS = [op('a', z.strictObject({ n: z.number() })), op('b', z.strictObject({}).optional())] as const;
  type Op = z.infer<(typeof OPS)[number]>;

  it('must handle every op of the union, each with its own data', async () => {
    const handlers: OpHandlers<Op> = { a: (_conn, data) => ({ doubled: data.n * 2 }), b: () => ({}) };
    expect(await handlers.a({} as ClientConnection, { n: 2 })).toEqual({ doubled: 4 });
    // @ts-expect-error op `b` has no handler
    const missing: OpHandlers<Op> = { a: () => ({}) };
    // @ts-expect-error `data.m` does not exist on op `a`
    const wrong: OpHandlers<Op> = { a: (_c, data) => data.m, b: () => ({}) };
    expect(missing && wrong).toBeTruthy();
  });
});
