/**
 * A tap on the SFU for tests: catches every mediasoup router and producer the in-process server
 * creates (mediasoup's observer API, registered before the server starts), and copies one producer's
 * RTP to a test-owned UDP socket through a PlainTransport consumer — exactly what the server (or
 * anyone holding it) can see of a call. `decodeInPage` then runs the captured Opus payloads through
 * Chromium's WebCodecs AudioDecoder and reports how loud and how tonal the result is.
 */
import dgram from 'node:dgram';
import type { types } from 'mediasoup';
import * as mediasoup from 'mediasoup';
import type { Page } from 'playwright-core';

export const tappedRouters: types.Router[] = [];
export const tappedProducers: types.Producer[] = [];

mediasoup.observer.on('newworker', (w) =>
  w.observer.on('newrouter', (r) => {
    tappedRouters.push(r);
    r.observer.on('newtransport', (t) => t.observer.on('newproducer', (p) => tappedProducers.push(p)));
  }),
);

/** Copies `producer`'s RTP for `ms` and returns the payloads (RTP header stripped). */
export async function captureRtp(router: types.Router, producerId: string, ms: number): Promise<Buffer[]> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const payloads: Buffer[] = [];
  sock.on('message', (m) => {
    if (m.length < 12 || m[0]! >> 6 !== 2) return;
    const pt = m[1]! & 0x7f;
    if (pt >= 72 && pt <= 79) return; // RTCP (muxed)
    let off = 12 + (m[0]! & 0x0f) * 4;
    if (m[0]! & 0x10) off += 4 + m.readUInt16BE(off + 2) * 4;
    let end = m.length;
    if (m[0]! & 0x20) end -= m[m.length - 1]!;
    if (end > off) payloads.push(m.subarray(off, end));
  });
  const plain = await router.createPlainTransport({
    listenInfo: { protocol: 'udp', ip: '127.0.0.1' },
    rtcpMux: true,
    comedia: false,
  });
  await plain.connect({ ip: '127.0.0.1', port: (sock.address() as { port: number }).port });
  const consumer = await plain.consume({ producerId, rtpCapabilities: router.rtpCapabilities });
  await new Promise((r) => setTimeout(r, ms));
  consumer.close();
  plain.close();
  sock.close();
  return payloads;
}

export interface DecodeReport {
  frames: number;
  decodeErrors: number;
  /** RMS of the decoded audio over frames that decoded. */
  rms: number;
  /** Highest share of spectral energy in one narrow band (1 = a pure tone), over loud frames. */
  tonality: number;
  /** Per loud frame, the 50 Hz band holding the most energy (Hz). */
  peaks: number[];
}

/** How many of the captured frames decode loud with their peak in the band of `hz`. */
export const framesAt = (r: DecodeReport, hz: number) => r.peaks.filter((p) => Math.abs(p - hz) < 25).length;

/** Decodes Opus payloads with WebCodecs in `page` (any secure-context page) and measures them. */
export async function decodeInPage(page: Page, payloads: Buffer[]): Promise<DecodeReport> {
  return page.evaluate(
    async (list: number[][]) => {
      const w = globalThis as any;
      const chunks: Float32Array[] = [];
      let errors = 0;
      for (const bytes of list) {
        // One decoder per frame: a frame that breaks the decoder must not hide the others.
        const got = await new Promise<Float32Array | null>((resolve) => {
          let out: Float32Array | null = null;
          const dec = new w.AudioDecoder({
            output: (d: any) => {
              const buf = new Float32Array(d.numberOfFrames);
              d.copyTo(buf, { planeIndex: 0, format: 'f32-planar' });
              d.close();
              out = buf;
            },
            error: () => resolve(null),
          });
          try {
            dec.configure({ codec: 'opus', sampleRate: 48000, numberOfChannels: 2 });
            dec.decode(new w.EncodedAudioChunk({ type: 'key', timestamp: 0, data: new Uint8Array(bytes) }));
            dec.flush().then(
              () => resolve(out),
              () => resolve(null),
            );
          } catch {
            resolve(null);
          }
        });
        if (got) chunks.push(got);
        else errors++;
      }
      let sum = 0;
      let n = 0;
      let tonality = 0;
      const peaks: number[] = [];
      for (const c of chunks) {
        let s = 0;
        for (const x of c) s += x * x;
        sum += s;
        n += c.length;
        if (Math.sqrt(s / Math.max(1, c.length)) < 0.01) continue;
        // Energy per 50 Hz band from 90 Hz to 4 kHz (a direct DFT; frames are short; 440 is a band).
        const bands: number[] = [];
        for (let f = 90; f <= 4000; f += 50) {
          let re = 0;
          let im = 0;
          for (let i = 0; i < c.length; i++) {
            const ph = (2 * Math.PI * f * i) / 48000;
            re += c[i]! * Math.cos(ph);
            im -= c[i]! * Math.sin(ph);
          }
          bands.push(re * re + im * im);
        }
        const total = bands.reduce((a, b) => a + b, 0);
        const sorted = [...bands].sort((a, b) => b - a);
        tonality = Math.max(tonality, (sorted[0]! + sorted[1]!) / total);
        peaks.push(90 + 50 * bands.indexOf(sorted[0]!));
      }
      return { frames: list.length, decodeErrors: errors, rms: Math.sqrt(sum / Math.max(1, n)), tonality, peaks };
    },
    payloads.map((p) => [...p]),
  );
}
