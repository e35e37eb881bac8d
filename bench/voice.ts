/**
 * `npm run bench:voice`: what one mediasoup worker (one core) carries, and what a peer costs.
 *
 * 1. Capacity: one router on one worker; SPEAKERS producers fed with synthetic Opus-sized RTP
 *    (100-byte payload every 20 ms, like 40 kbit/s Opus) from this process over PlainTransports;
 *    listeners are PlainTransports that each consume every speaker (a room where everyone talks)
 *    and deliver to a UDP socket here that counts packets. Each step adds listeners and measures,
 *    for STEP_SECONDS, the worker's CPU (getResourceUsage), its loss (its own packet counters:
 *    producers' received × listeners vs consumers' sent, read with the speakers stopped and the
 *    pipes drained) and the delivered loss (sent here × listeners vs received here), until the
 *    worker's loss exceeds 1% or MAX_CONSUMERS is reached. The sender keeps a true 50 packets/s per
 *    speaker (a late timer catches up). On a shared machine the delivered loss includes this
 *    process's own sockets overflowing while it waits for a core, so it is reported, not a limit.
 * 2. RSS per peer: PEERS users join one room through the voice service, each with a send and a recv
 *    WebRtcTransport and every other peer's producer consumed by none (connection state only); the
 *    worker's and this process's resident memory before and after, divided by PEERS.
 *
 * 3. Join latency over the gateway: the real server in its own process (fresh SQLite database, one
 *    worker) and real clients in this process (`ws` + @roamhq/wrtc + mediasoup-client, the tests' VoiceTestClient).
 *    A listener is in the room; JOINERS users with open sockets send voice_join at the same moment,
 *    then do what a client does (load the device, send transport, produce a 440 Hz tone). The listener
 *    consumes each new producer as voice_new_producer arrives. Latency = voice_join sent → the
 *    listener's first decoded audio frame above silence from that joiner (≥ first RTP packet, as the
 *    decoder needs one). Then the worker's RSS with every peer connected and the tones flowing,
 *    per connected peer. Rate limits are raised with VOICECHAT_RATE_LIMIT_SCALE (21 sockets from one
 *    address), never removed.
 * Env: BENCH_SPEAKERS (20), BENCH_STEP (200 consumers), BENCH_MAX_CONSUMERS (2000),
 * BENCH_STEP_SECONDS (3), BENCH_PEERS (200), BENCH_JOINERS (20), BENCH_ONLY (capacity|rss|join).
 */
import { createSocket, type Socket } from 'node:dgram';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import type { types as ms } from 'mediasoup';
import * as mediasoup from 'mediasoup';
import { loadConfig } from '../src/config/index.js';
import { Keyring } from '../src/crypto/keyring.js';
import { createLogger } from '../src/logger.js';
import { AUDIO_CODECS } from '../src/voice/room-directory.js';
import { VoiceService } from '../src/voice/VoiceService.js';
import { createTestDatabase } from '../test/support/db.js';
import { createUser } from '../test/support/factories.js';
import { seedGuildRows } from '../test/support/guilds.js';
import { startNodeProcess } from '../test/support/nodes.js';
import type { TestServer } from '../test/support/server.js';
import { gatewaySignal, VoiceTestClient } from '../test/support/voice-client.js';
import { GatewayClient } from '../test/support/ws.js';

const SPEAKERS = Number(process.env.BENCH_SPEAKERS ?? 20);
const STEP = Number(process.env.BENCH_STEP ?? 200);
const MAX_CONSUMERS = Number(process.env.BENCH_MAX_CONSUMERS ?? 2000);
const STEP_SECONDS = Number(process.env.BENCH_STEP_SECONDS ?? 3);
const PEERS = Number(process.env.BENCH_PEERS ?? 200);
const JOINERS = Number(process.env.BENCH_JOINERS ?? 20);
const ONLY = process.env.BENCH_ONLY;
const PAYLOAD = 100;
const PT = 100;

const rssOf = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (b: number) => (b / 1024 / 1024).toFixed(1);

async function bind(): Promise<Socket> {
  const s = createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  return s;
}

interface Step {
  consumers: number;
  listeners: number;
  worker_cpu_pct: number;
  bench_cpu_pct: number;
  /** RTP packets per second delivered by the worker (what the CPU figure pays for). */
  pps_out: number;
  /** Packets the worker received but did not forward to every listener (its own counters). */
  loss_pct: number;
  /** Packets this process sent × listeners that did not come back to it. */
  delivered_loss_pct: number;
}

async function capacity(): Promise<Step[]> {
  const worker = await mediasoup.createWorker({ logLevel: 'error' });
  const router = await worker.createRouter({ mediaCodecs: AUDIO_CODECS });
  const listen = { protocol: 'udp' as const, ip: '127.0.0.1' };

  // Speakers: a comedia PlainTransport each, fed from one local socket per speaker.
  const speakers: { socket: Socket; port: number; ssrc: number; seq: number; ts: number; producer: ms.Producer }[] = [];
  for (let i = 0; i < SPEAKERS; i++) {
    const transport = await router.createPlainTransport({ listenInfo: listen, rtcpMux: true, comedia: true });
    const ssrc = 10_000 + i;
    const producer = await transport.produce({
      kind: 'audio',
      rtpParameters: {
        codecs: [{ mimeType: 'audio/opus', payloadType: PT, clockRate: 48000, channels: 2 }],
        encodings: [{ ssrc }],
      },
    });
    speakers.push({ socket: await bind(), port: transport.tuple.localPort, ssrc, seq: 0, ts: 0, producer });
  }
  let ticks = 0;
  let started = performance.now();
  let sending = true;
  // Every 20 ms of wall time is one packet per speaker; a late timer catches up (a busy machine
  // delays timers, and a slower sender would flatter the worker).
  const sendDue = () => {
    if (!sending) return;
    const due = Math.floor((performance.now() - started) / 20);
    for (let n = 0; ticks < due && n < 10; n++) sendTick();
  };
  const sendTick = () => {
    ticks += 1;
    for (const s of speakers) {
      // A fresh buffer per packet: send() reads it later, so a shared one would be overwritten.
      const packet = Buffer.allocUnsafe(12 + PAYLOAD);
      packet[0] = 0x80;
      packet[1] = PT;
      packet.writeUInt16BE(s.seq, 2);
      packet.writeUInt32BE(s.ts >>> 0, 4);
      packet.writeUInt32BE(s.ssrc, 8);
      packet.fill(0xab, 12);
      s.seq = (s.seq + 1) & 0xffff;
      s.ts += 960;
      s.socket.send(packet, s.port, '127.0.0.1');
    }
  };
  const sender = setInterval(sendDue, 5);

  /** Stops the speakers and lets what is in flight arrive, so counters can be read at rest. */
  const quiesce = async () => {
    sending = false;
    await sleep(300);
  };
  const resume = () => {
    started = performance.now() - ticks * 20;
    sending = true;
  };
  type Stat = { type: string; packetCount: number };
  const sum = async (items: { getStats(): Promise<Stat[]> }[], type: string) =>
    (await Promise.all(items.map((i) => i.getStats()))).reduce(
      (n, stats) => n + (stats.find((st) => st.type === type)?.packetCount ?? 0),
      0,
    );

  let received = 0;
  const listeners: Socket[] = [];
  const consumers: ms.Consumer[] = [];
  const addListener = async () => {
    const socket = await bind();
    socket.on('message', () => {
      received += 1;
    });
    listeners.push(socket);
    const transport = await router.createPlainTransport({ listenInfo: listen, rtcpMux: true, comedia: false });
    await transport.connect({ ip: '127.0.0.1', port: socket.address().port });
    consumers.push(
      ...(await Promise.all(
        speakers.map((s) => transport.consume({ producerId: s.producer.id, rtpCapabilities: router.rtpCapabilities })),
      )),
    );
  };

  const steps: Step[] = [];
  const perListener = SPEAKERS;
  try {
    while (listeners.length * perListener < MAX_CONSUMERS) {
      const target = Math.ceil((listeners.length * perListener + STEP) / perListener);
      while (listeners.length < target) await addListener();
      await sleep(1000);
      // Counters are read with the speakers stopped and the pipes drained, so nothing is in
      // flight: worker loss = producers' received packets × listeners vs consumers' sent packets
      // (the worker's own counters); delivered loss = what this process sent × listeners vs what
      // it received (on a busy machine this includes our own sockets overflowing).
      await quiesce();
      const p0 = await sum(speakers.map((x) => x.producer) as never, 'inbound-rtp');
      const s0 = await sum(consumers as never, 'outbound-rtp');
      const k0 = ticks;
      const r0 = received;
      const u0 = await worker.getResourceUsage();
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      resume();
      await sleep(STEP_SECONDS * 1000);
      const u1 = await worker.getResourceUsage();
      const c1 = process.cpuUsage(c0);
      const elapsed = performance.now() - t0;
      await quiesce();
      const p1 = await sum(speakers.map((x) => x.producer) as never, 'inbound-rtp');
      const s1 = await sum(consumers as never, 'outbound-rtp');
      const got = received - r0;
      const expected = (ticks - k0) * SPEAKERS * listeners.length;
      resume();
      const pct = (part: number, whole: number) => Math.max(0, Math.round((1 - part / whole) * 10000) / 100);
      const step: Step = {
        consumers: consumers.length,
        listeners: listeners.length,
        worker_cpu_pct: Math.round(((u1.ru_utime + u1.ru_stime - u0.ru_utime - u0.ru_stime) / elapsed) * 1000) / 10,
        bench_cpu_pct: Math.round(((c1.user + c1.system) / 1000 / elapsed) * 1000) / 10,
        pps_out: Math.round((s1 - s0) / (elapsed / 1000)),
        loss_pct: pct(s1 - s0, (p1 - p0) * listeners.length),
        delivered_loss_pct: pct(got, expected),
      };
      steps.push(step);
      console.log(
        `${String(step.consumers).padStart(6)} consumers  worker CPU ${String(step.worker_cpu_pct).padStart(5)}%  ${String(step.pps_out).padStart(6)} pkt/s out  worker loss ${step.loss_pct}%  delivered loss ${step.delivered_loss_pct}%  (bench CPU ${step.bench_cpu_pct}%)`,
      );
      if (step.loss_pct > 1) break;
    }
  } finally {
    clearInterval(sender);
    for (const s of [...speakers.map((x) => x.socket), ...listeners]) s.close();
    worker.close();
  }
  return steps;
}

async function rssPerPeer() {
  const config = loadConfig({
    env: { VOICECHAT_RTC_PORT: '0', VOICECHAT_RTC_LISTEN_IP: '127.0.0.1', VOICECHAT_RTC_WORKERS: '1' },
  });
  const voice = VoiceService.create({ config, logger: createLogger('error') });
  await voice.start();
  const pid = voice.pool?.slots()[0]?.worker.pid as number;
  global.gc?.();
  const w0 = rssOf(pid);
  const n0 = process.memoryUsage().rss;
  for (let i = 0; i < PEERS; i++) {
    const user = `bench-${i}`;
    await voice.join(user, 'bench-room');
    await voice.createTransport(user, 'send');
    await voice.createTransport(user, 'recv');
  }
  global.gc?.();
  await sleep(200);
  const w1 = rssOf(pid);
  const n1 = process.memoryUsage().rss;
  voice.close();
  return {
    peers: PEERS,
    worker_rss_per_peer_bytes: Math.round((w1 - w0) / PEERS),
    // Without --expose-gc the process's own RSS is GC noise; only the worker's is reported then.
    node_rss_per_peer_bytes: global.gc ? Math.round((n1 - n0) / PEERS) : null,
    worker_rss_bytes: w1,
  };
}

/** The mediasoup worker: the server process's child (its threads' children lists). */
function workerPidOf(serverPid: number): number {
  const tasks = readdirSync(`/proc/${serverPid}/task`);
  for (const t of tasks) {
    const children = readFileSync(`/proc/${serverPid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    for (const c of children) if (readFileSync(`/proc/${c}/comm`, 'utf8').startsWith('mediasoup')) return Number(c);
  }
  throw new Error('no mediasoup worker under the server process');
}

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
};

async function joinLatency() {
  const database = await createTestDatabase({ dialect: 'sqlite' });
  const keyring = Keyring.generate();
  const keyringFile = `${database.dir}/keys.json`;
  keyring.save(keyringFile);
  const config = loadConfig({
    env: { VOICECHAT_DATA_DIR: database.dir, VOICECHAT_DATABASE_URL: database.databaseUrl },
  });
  // The server in its own process (as deployed), so the 21 clients here do not share its event loop.
  const node = await startNodeProcess({
    VOICECHAT_DATA_DIR: database.dir,
    VOICECHAT_DATABASE_URL: database.databaseUrl,
    VOICECHAT_KEYRING: keyringFile,
    VOICECHAT_LOG_LEVEL: 'error',
    VOICECHAT_RTC_PORT: '0',
    VOICECHAT_RTC_LISTEN_IP: '127.0.0.1',
    VOICECHAT_RTC_WORKERS: '1',
    VOICECHAT_RATE_LIMIT_SCALE: '10',
  });
  const wsUrl = node.wsUrl;
  const server = { db: database.db, keyring, config } as unknown as TestServer;
  const users = await Promise.all(Array.from({ length: JOINERS + 1 }, () => createUser(server)));
  const [owner, ...joiners] = users as [(typeof users)[0], ...typeof users];
  const { voiceChannelId: channelId } = await seedGuildRows(
    database.db,
    owner.id,
    joiners.map((u) => u.id),
  );
  const clients: VoiceTestClient[] = [];
  const sockets: GatewayClient[] = [];
  try {
    // The listener: in the room first, consuming every producer as it is announced.
    const { client: listenerWs } = await GatewayClient.ready(wsUrl, owner.accessToken);
    sockets.push(listenerWs);
    const listener = new VoiceTestClient(gatewaySignal(listenerWs, channelId));
    clients.push(listener);
    await listener.join();
    const heardAt = new Map<string, number>();
    const consumedAt = new Map<string, number>();
    const consumerOf = new Map<string, string>();
    listenerWs.ws.on('message', (raw) => {
      const f = JSON.parse(String(raw));
      if (f.type !== 'voice_new_producer') return;
      void listener.receive(f.data.producer_id).then((consumerId) => {
        consumerOf.set(f.data.user_id, consumerId);
        consumedAt.set(f.data.user_id, performance.now());
      });
    });
    const poll = setInterval(() => {
      for (const [userId, consumerId] of consumerOf) {
        if (!heardAt.has(userId) && (listener.loudness.get(consumerId) ?? 0) > 100)
          heardAt.set(userId, performance.now());
      }
    }, 2);

    const ready = await Promise.all(joiners.map((u) => GatewayClient.ready(wsUrl, u.accessToken)));
    sockets.push(...ready.map((r) => r.client));
    const pid = workerPidOf(node.child.pid as number);
    const workerBefore = rssOf(pid);
    const sentAt = new Map<string, number>();
    const joinedAt = new Map<string, number>();
    const producedAt = new Map<string, number>();
    await Promise.all(
      joiners.map(async (u, i) => {
        const c = new VoiceTestClient(gatewaySignal(ready[i]!.client, channelId));
        clients.push(c);
        sentAt.set(u.id, performance.now());
        await c.join();
        joinedAt.set(u.id, performance.now());
        await c.sendTone();
        producedAt.set(u.id, performance.now());
      }),
    );
    const until = Date.now() + 30_000;
    while (heardAt.size < joiners.length && Date.now() < until) await sleep(20);
    clearInterval(poll);
    const latencies = joiners
      .filter((u) => heardAt.has(u.id))
      .map((u) => (heardAt.get(u.id) as number) - (sentAt.get(u.id) as number));
    const stage = (m: Map<string, number>) =>
      Math.round(
        percentile(
          joiners.filter((u) => m.has(u.id)).map((u) => (m.get(u.id) as number) - (sentAt.get(u.id) as number)),
          50,
        ),
      );
    const stages_p50_ms = { join_reply: stage(joinedAt), produced: stage(producedAt), consumed: stage(consumedAt) };
    await sleep(500);
    const workerAfter = rssOf(pid);
    const connected = joiners.length + 1;
    return {
      joiners: joiners.length,
      heard: latencies.length,
      p50_ms: Math.round(percentile(latencies, 50)),
      p95_ms: Math.round(percentile(latencies, 95)),
      max_ms: Math.round(Math.max(...latencies)),
      stages_p50_ms,
      connected_peers: connected,
      worker_rss_bytes: workerAfter,
      worker_rss_per_connected_peer_bytes: Math.round((workerAfter - workerBefore) / Math.max(1, connected - 1)),
    };
  } finally {
    for (const c of clients) c.close();
    for (const s of sockets) s.close();
    await node.stop();
    await database.drop();
  }
}

const cpus = os.cpus();
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
console.log(`machine: ${cpus.length} × ${cpus[0]?.model ?? 'cpu'}, ${mib(os.totalmem())} MiB, load ${load()}`);
let steps: Step[] = [];
let best: Step | undefined;
if (!ONLY || ONLY === 'capacity') {
  console.log(`capacity: ${SPEAKERS} speakers, +${STEP} consumers per step, ${STEP_SECONDS} s per step`);
  steps = await capacity();
  const ok = steps.filter((s) => s.loss_pct <= 1);
  best = ok[ok.length - 1];
  console.log(`\nmax consumers on one worker with loss <= 1%: ${best?.consumers ?? 0}`);
}
let rss: Awaited<ReturnType<typeof rssPerPeer>> | undefined;
if (!ONLY || ONLY === 'rss') {
  rss = await rssPerPeer();
  console.log(
    `RSS per peer (send + recv WebRtcTransport): worker ${(rss.worker_rss_per_peer_bytes / 1024).toFixed(1)} KiB, node ${rss.node_rss_per_peer_bytes === null ? 'n/a (NODE_OPTIONS=--expose-gc)' : `${(rss.node_rss_per_peer_bytes / 1024).toFixed(1)} KiB`} (${rss.peers} peers)`,
  );
}
let join: Awaited<ReturnType<typeof joinLatency>> | undefined;
if (!ONLY || ONLY === 'join') {
  console.log(`\njoin latency: ${JOINERS} peers send voice_join at once over the gateway (load ${load()})`);
  join = await joinLatency();
  console.log(
    `voice_join → first audio at another peer: p50 ${join.p50_ms} ms, p95 ${join.p95_ms} ms, max ${join.max_ms} ms (${join.heard}/${join.joiners} heard; target p95 < 400 ms)`,
  );
  console.log(`  stages (p50 from voice_join sent): ${JSON.stringify(join.stages_p50_ms)}`);
  console.log(
    `worker RSS with ${join.connected_peers} connected peers (ICE+DTLS up, tones flowing): ${mib(join.worker_rss_bytes)} MiB, ${(join.worker_rss_per_connected_peer_bytes / 1024).toFixed(1)} KiB per connected peer`,
  );
}
console.log(`load after: ${load()}`);
console.log(
  JSON.stringify({
    machine: { cpus: cpus.length, model: cpus[0]?.model },
    speakers: SPEAKERS,
    steps,
    max_consumers: best?.consumers ?? 0,
    rss,
    join,
  }),
);
process.exit(0);
