/**
 * Test-only entry (never part of the app's build): exposes the client's crypto pieces on
 * `globalThis.harness` so the Chromium tests can drive them under the page's real CSP, plus an
 * in-page loopback call (two peer connections, an oscillator as the microphone) to check the voice
 * frame transform on real encoded Opus frames without any server.
 */
import { loadOlm } from '../lib/olm';
import { SecureStore, WrongSecretError } from '../lib/secure-store';
import {
  attachTransform,
  decryptingTransform,
  encryptingTransform,
  FrameDecryptor,
  FrameEncryptor,
  importFrameKey,
  insertableStreamsSupported,
  newKeyMaterial,
} from '../lib/sframe';

interface LoopbackOptions {
  /** Seal outgoing frames with this key (id, material); null = send in the clear. */
  senderKey: [number, number[]] | null;
  /** Keys the receiver knows; null = no transform on the receiver at all (raw bytes to the decoder). */
  receiverKeys: [number, number[]][] | null;
  ms: number;
}

/** Energy near the tone's frequency over total energy, from an AnalyserNode on the received audio. */
async function measure(stream: MediaStream, ms: number, toneHz: number) {
  const ctx = new AudioContext();
  // Chromium only feeds a remote WebRTC stream into Web Audio while a media element plays it.
  const el = new Audio();
  el.muted = true;
  el.srcObject = stream;
  await el.play().catch(() => {});
  const src = ctx.createMediaStreamSource(stream);
  const an = ctx.createAnalyser();
  an.fftSize = 2048;
  src.connect(an);
  const bins = new Float32Array(an.frequencyBinCount);
  const wave = new Float32Array(an.fftSize);
  const toneBin = Math.round((toneHz / ctx.sampleRate) * an.fftSize);
  let maxRms = 0;
  let bestRatio = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    an.getFloatTimeDomainData(wave);
    const rms = Math.sqrt(wave.reduce((s, x) => s + x * x, 0) / wave.length);
    maxRms = Math.max(maxRms, rms);
    an.getFloatFrequencyData(bins);
    let total = 0;
    let tone = 0;
    bins.forEach((db, i) => {
      const p = 10 ** (db / 10);
      total += p;
      if (Math.abs(i - toneBin) <= 2) tone += p;
    });
    if (rms > 0.001) bestRatio = Math.max(bestRatio, tone / total);
  }
  await ctx.close();
  el.srcObject = null;
  return { maxRms, toneRatio: bestRatio };
}

async function loopback(o: LoopbackOptions) {
  const config = { encodedInsertableStreams: true } as RTCConfiguration;
  const a = new RTCPeerConnection(config);
  const b = new RTCPeerConnection(config);
  a.onicecandidate = (e) => e.candidate && void b.addIceCandidate(e.candidate);
  b.onicecandidate = (e) => e.candidate && void a.addIceCandidate(e.candidate);
  const mic = new AudioContext();
  const osc = mic.createOscillator();
  osc.frequency.value = 440;
  const dest = mic.createMediaStreamDestination();
  osc.connect(dest);
  osc.start();
  const enc = new FrameEncryptor();
  const dec = new FrameDecryptor();
  if (o.senderKey) enc.setKey(await importFrameKey(o.senderKey[0], Uint8Array.from(o.senderKey[1])));
  for (const [id, m] of o.receiverKeys ?? []) dec.addKey(await importFrameKey(id, Uint8Array.from(m)));
  const sender = a.addTrack(dest.stream.getAudioTracks()[0]!, dest.stream);
  // Without a transform on one side the frames must still be read from the stream (Chromium stalls otherwise).
  attachTransform(sender, o.senderKey ? encryptingTransform(enc) : new TransformStream());
  const remote = new Promise<MediaStream>((resolve) => {
    b.ontrack = (e) => {
      attachTransform(e.receiver, o.receiverKeys ? decryptingTransform(dec) : new TransformStream());
      resolve(new MediaStream([e.track]));
    };
  });
  await a.setLocalDescription();
  await b.setRemoteDescription(a.localDescription!);
  await b.setLocalDescription();
  await a.setRemoteDescription(b.localDescription!);
  const result = await measure(await remote, o.ms, 440);
  a.close();
  b.close();
  osc.stop();
  await mic.close();
  return { ...result, sent: { ...enc.stats }, received: { ...dec.stats } };
}

(globalThis as any).harness = {
  SecureStore,
  WrongSecretError,
  loadOlm,
  FrameEncryptor,
  FrameDecryptor,
  importFrameKey,
  newKeyMaterial,
  insertableStreamsSupported,
  loopback,
};
(globalThis as any).harnessReady = true;
