/**
 * TURN for real: GET /api/voice/ice-servers hands out coturn REST credentials; a real coturn
 * (`use-auth-secret`, the same secret) relays a wrtc client's audio when the client may use relay
 * candidates only; an expired credential is refused by coturn itself.
 */
import { randomBytes } from 'node:crypto';
import wrtc from '@roamhq/wrtc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { turnCredential } from '../../src/voice/ice-servers.js';
import { register } from '../support/auth.js';
import { type Coturn, startCoturn } from '../support/coturn.js';
import { api } from '../support/factories.js';
import { useTestServer } from '../support/server.js';
import { directSignal, VoiceTestClient } from '../support/voice-client.js';

const SECRET = randomBytes(24).toString('hex');

/** The relay candidates a fresh peer connection gathers with these ICE servers (none = refused). */
async function relayCandidates(iceServers: unknown[]): Promise<string[]> {
  const pc = new wrtc.RTCPeerConnection({ iceServers, iceTransportPolicy: 'relay' } as never);
  const found: string[] = [];
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 8000);
    pc.onicecandidate = (e: { candidate: { candidate: string } | null }) => {
      if (e.candidate) found.push(e.candidate.candidate);
      else {
        clearTimeout(timer);
        resolve();
      }
    };
  });
  pc.createDataChannel('probe');
  await pc.setLocalDescription(await pc.createOffer());
  await done;
  pc.close();
  return found.filter((c) => / typ relay /.test(c));
}

describe('TURN through coturn with REST credentials', () => {
  let coturn: Coturn;
  const clients: VoiceTestClient[] = [];
  beforeAll(async () => {
    coturn = await startCoturn(SECRET);
  });
  // After hooks run last-registered first: this one after the server stopped.
  afterAll(async () => {
    for (const c of clients) c.close();
    await coturn?.stop();
  });
  const server = useTestServer(() => ({
    VOICECHAT_VOICE: 'on',
    VOICECHAT_RTC_PORT: '0',
    VOICECHAT_RTC_LISTEN_IP: '127.0.0.1',
    VOICECHAT_RTC_WORKERS: '1',
    VOICECHAT_STUN_URLS: `stun:127.0.0.1:${coturn.port}`,
    VOICECHAT_TURN_URLS: coturn.url,
    VOICECHAT_TURN_SECRET: SECRET,
    VOICECHAT_TURN_TTL: '600',
  }));

  it('GET /api/voice/ice-servers needs a token and returns coturn REST credentials', async () => {
    expect((await api(server, 'GET', '/api/voice/ice-servers')).status).toBe(401);
    const user = await register(server);
    const before = Math.floor(Date.now() / 1000);
    const res = await api(server, 'GET', '/api/voice/ice-servers', { headers: user.headers });
    expect(res.status).toBe(200);
    const [stun, turn] = res.body.ice_servers;
    expect(stun).toEqual({ urls: [`stun:127.0.0.1:${coturn.port}`] });
    const [expiry, userId] = turn.username.split(':');
    expect(userId).toBe(user.id);
    expect(Number(expiry)).toBeGreaterThanOrEqual(before + 600);
    expect(Number(expiry)).toBeLessThanOrEqual(before + 602);
    expect(turn.credential).toBe(turnCredential(SECRET, user.id, Number(expiry)).credential);
    expect(res.body.expires_at).toBe(new Date(Number(expiry) * 1000).toISOString());
  });

  it('relays audio between two clients that may only use TURN', async () => {
    const voice = server.ctx.voice;
    const [a, b] = [await register(server), await register(server)];
    const iceFor = async (u: typeof a) =>
      (await api(server, 'GET', '/api/voice/ice-servers', { headers: u.headers })).body.ice_servers;
    const alice = new VoiceTestClient(directSignal(voice, a.id, 'turn-chan'), {
      iceTransportPolicy: 'relay',
      iceServers: await iceFor(a),
    });
    const bob = new VoiceTestClient(directSignal(voice, b.id, 'turn-chan'), {
      iceTransportPolicy: 'relay',
      iceServers: await iceFor(b),
    });
    clients.push(alice, bob);
    await alice.join();
    const producerId = await alice.sendTone();
    await bob.join();
    const consumerId = await bob.receive(producerId);
    expect(await bob.heard(consumerId)).toBeGreaterThan(500);
    // coturn itself saw both users' allocations.
    expect(coturn.log()).toContain(a.id);
    expect(coturn.log()).toContain(b.id);
  });

  it('coturn refuses an expired credential (and accepts a fresh one)', async () => {
    const user = await register(server);
    const fresh = (await api(server, 'GET', '/api/voice/ice-servers', { headers: user.headers })).body.ice_servers[1];
    expect(await relayCandidates([fresh])).not.toHaveLength(0);

    const expired = turnCredential(SECRET, user.id, Math.floor(Date.now() / 1000) - 60);
    expect(await relayCandidates([{ urls: [coturn.url], ...expired }])).toHaveLength(0);
    const forged = { username: fresh.username, credential: Buffer.alloc(20).toString('base64') };
    expect(await relayCandidates([{ urls: [coturn.url], ...forged }])).toHaveLength(0);
  });
});
