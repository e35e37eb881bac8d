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
 * Join latency over the gateway comes with the signalling (phase 2).
 * Env: BENCH_SPEAKERS (20), BENCH_STEP (200 consumers), BENCH_MAX_CONSUMERS (2000),
 * BENCH_STEP_SECONDS (3), BENCH_PEERS (200).
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { types as ms } from 'mediasoup';
import * as mediasoup from 'mediasoup';
import { loadConfig } from '../src/config/index.js';
import { createLogger } from '../src/logger.js';
import { AUDIO_CODECS } from '../src/voice/room-directory.js';
import { VoiceService } from '../src/voice/VoiceService.js';

const SPEAKERS = Number(process.env.BENCH_SPEAKERS ?? 20);
const STEP = Number(process.env.BENCH_STEP ?? 200);
const MAX_CONSUMERS = Number(process.env.BENCH_MAX_CONSUMERS ?? 2000);
const STEP_SECONDS = Number(process.env.BENCH_STEP_SECONDS ?? 3);
const PEERS = Number(process.env.BENCH_PEERS ?? 200);
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

const cpus = os.cpus();
console.log(
  `machine: ${cpus.length} × ${cpus[0]?.model ?? 'cpu'}, ${mib(os.totalmem())} MiB, load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
console.log(`capacity: ${SPEAKERS} speakers, +${STEP} consumers per step, ${STEP_SECONDS} s per step`);
const steps = await capacity();
const ok = steps.filter((s) => s.loss_pct <= 1);
const best = ok[ok.length - 1];
console.log(`\nmax consumers on one worker with loss <= 1%: ${best?.consumers ?? 0}`);
const rss = await rssPerPeer();
console.log(
  `RSS per peer (send + recv WebRtcTransport): worker ${(rss.worker_rss_per_peer_bytes / 1024).toFixed(1)} KiB, node ${rss.node_rss_per_peer_bytes === null ? 'n/a (NODE_OPTIONS=--expose-gc)' : `${(rss.node_rss_per_peer_bytes / 1024).toFixed(1)} KiB`} (${rss.peers} peers)`,
);
console.log(
  JSON.stringify({
    machine: { cpus: cpus.length, model: cpus[0]?.model },
    speakers: SPEAKERS,
    steps,
    max_consumers: best?.consumers ?? 0,
    rss,
  }),
);
