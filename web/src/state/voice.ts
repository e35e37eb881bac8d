/**
 * Voice as the UI sees it: which channel this browser is in, the connection phase, mute / deafen /
 * push-to-talk, per-user volume, devices, speaking levels and the last error in words. The
 * mediasoup-client session itself (voice/session.ts) is a separate chunk imported on the first join.
 * A dropped gateway or a failed transport rejoins on its own (the server removes us from voice when
 * the socket closes), with backoff, until the user leaves.
 */
import { signal } from '@preact/signals';
import { currentUser } from '../lib/session';
import type { GatewayEvent } from '../lib/types';
import type { VoiceSession } from '../voice/session';

export type VoicePhase = 'idle' | 'joining' | 'connected' | 'reconnecting';

export const voiceChannelId = signal<string | null>(null);
export const voicePhase = signal<VoicePhase>('idle');
export const voiceError = signal<string | null>(null);
export const micError = signal<string | null>(null);
export const selfMuted = signal(false);
export const selfDeafened = signal(false);
export const serverMuted = signal(false);
/** Whether this session encrypts its voice end to end. */
export const voiceE2ee = signal(false);
/** user id → audio level 0–1 (self under the signed-in user's id). */
export const voiceLevels = signal<Record<string, number>>({});
export const SPEAKING_LEVEL = 0.01;

const SETTINGS = 'voicechat.voice';
interface VoiceSettings {
  pushToTalk: boolean;
  pttKey: string;
  inputDeviceId: string;
  outputDeviceId: string;
  volumes: Record<string, number>;
}
const DEFAULTS: VoiceSettings = {
  pushToTalk: false,
  pttKey: 'KeyV',
  inputDeviceId: '',
  outputDeviceId: '',
  volumes: {},
};

function loadSettings(): VoiceSettings {
  try {
    return { ...DEFAULTS, ...JSON.parse(localStorage.getItem(SETTINGS) ?? '{}') };
  } catch {
    return { ...DEFAULTS };
  }
}
export const voiceSettings = signal<VoiceSettings>(loadSettings());
function saveSettings(patch: Partial<VoiceSettings>): void {
  voiceSettings.value = { ...voiceSettings.value, ...patch };
  localStorage.setItem(SETTINGS, JSON.stringify(voiceSettings.value));
}

let session: VoiceSession | undefined;
let sender: { send(type: string, data: Record<string, unknown>, reply: true): Promise<any> } | undefined;
let attempt = 0;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
let levelTimer: ReturnType<typeof setInterval> | undefined;
let pttHeld = false;
/** Set by the E2EE voice layer: called with each new session so it can hand out and take keys. */
let e2eeHook: ((s: VoiceSession | undefined) => void) | undefined;
/** Set by the E2EE voice layer: readies the Olm device before an encrypted join (may ask to unlock). */
let e2eePrepare: (() => Promise<void>) | undefined;
/** Set by the E2EE voice layer: someone else joined or left the channel we are in. */
let roomChange: ((kind: 'joined' | 'left', userId: string) => void) | undefined;

export function setVoiceSignaller(s: typeof sender): void {
  sender = s;
}
export function setVoiceE2eeHooks(h: {
  session: typeof e2eeHook;
  prepare: typeof e2eePrepare;
  roomChange: typeof roomChange;
}): void {
  e2eeHook = h.session;
  e2eePrepare = h.prepare;
  roomChange = h.roomChange;
}
export const currentVoiceSession = () => session;

const MESSAGES: Record<string, string> = {
  VOICE_UNAVAILABLE: 'Voice is not available on this server right now. Try again later.',
  RATE_LIMITED: 'You are joining voice too quickly. Wait a few seconds, then try again.',
  E2EE_REQUIRED: 'This channel only allows end-to-end encrypted voice.',
  E2EE_UNSUPPORTED: 'This channel uses end-to-end encrypted voice, which this browser cannot do.',
  E2EE_LOCKED: 'Encrypted voice needs your encryption keys: unlock them to join.',
  NOT_FOUND: 'This voice channel does not exist or you cannot see it.',
};

function joinErrorText(e: any): string {
  const code = e?.code as string | undefined;
  if (code === 'FORBIDDEN') return /full/i.test(e.message) ? 'This voice channel is full.' : e.message;
  return (
    (code && MESSAGES[code]) ||
    (e?.message === 'not connected' ? 'Not connected to the server.' : e?.message) ||
    'Could not join voice.'
  );
}

/** The talk state the microphone should be in now (mute, deafen and push-to-talk together). */
function wantMuted(): boolean {
  const s = voiceSettings.value;
  return selfMuted.value || selfDeafened.value || (s.pushToTalk && !pttHeld);
}

async function applyMute(): Promise<void> {
  await session?.setMuted(wantMuted());
}

export async function joinVoice(channelId: string, opts: { e2ee: boolean }): Promise<void> {
  if (!sender) return;
  clearTimeout(retryTimer);
  if (session && !session.closed && session.channelId === channelId) return;
  leaveLocal();
  voiceChannelId.value = channelId;
  voiceE2ee.value = opts.e2ee;
  voicePhase.value = attempt > 0 ? 'reconnecting' : 'joining';
  voiceError.value = null;
  micError.value = null;
  try {
    if (opts.e2ee) await e2eePrepare?.();
    const { VoiceSession } = await import('../voice/session');
    const s = voiceSettings.value;
    const { session: created } = await VoiceSession.join(sender, {
      channelId,
      e2ee: opts.e2ee,
      inputDeviceId: s.inputDeviceId || undefined,
      outputDeviceId: s.outputDeviceId || undefined,
      volumeOf: (u) => voiceSettings.value.volumes[u] ?? 1,
      onLost: () => scheduleRejoin(),
      onMicError: (m) => {
        micError.value = m;
      },
    });
    if (voiceChannelId.value !== channelId) {
      created.close();
      return;
    }
    session = created;
    attempt = 0;
    voicePhase.value = 'connected';
    e2eeHook?.(created);
    await applyMute();
    if (selfDeafened.value) await created.setDeafened(true);
    startLevels();
  } catch (e: any) {
    if (voiceChannelId.value !== channelId) return;
    // A refusal is final; a lost connection is retried.
    if (e?.code && e.code !== 'CONFLICT') {
      voiceError.value = joinErrorText(e);
      voiceChannelId.value = null;
      voicePhase.value = 'idle';
      attempt = 0;
    } else {
      voiceError.value = null;
      scheduleRejoin();
    }
  }
}

function scheduleRejoin(): void {
  const channelId = voiceChannelId.value;
  if (!channelId) return;
  stopSession();
  voicePhase.value = 'reconnecting';
  clearTimeout(retryTimer);
  const delay = Math.min(10_000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
  attempt++;
  retryTimer = setTimeout(() => void joinVoice(channelId, { e2ee: voiceE2ee.value }), delay);
}

function stopSession(): void {
  clearInterval(levelTimer);
  session?.close();
  session = undefined;
  e2eeHook?.(undefined);
  voiceLevels.value = {};
}

/** Ends the session here without telling the server (the socket went away, or a new join replaces it). */
function leaveLocal(): void {
  clearTimeout(retryTimer);
  stopSession();
}

export async function leaveVoice(): Promise<void> {
  const wasIn = voiceChannelId.value !== null;
  voiceChannelId.value = null;
  voicePhase.value = 'idle';
  attempt = 0;
  leaveLocal();
  serverMuted.value = false;
  if (wasIn) await sender?.send('voice_leave', {}, true).catch(() => {});
}

export async function toggleMute(): Promise<void> {
  selfMuted.value = !selfMuted.value;
  await applyMute();
}

export async function toggleDeafen(): Promise<void> {
  selfDeafened.value = !selfDeafened.value;
  await session?.setDeafened(selfDeafened.value);
  await applyMute();
}

export function setPushToTalk(on: boolean, key?: string): void {
  saveSettings({ pushToTalk: on, ...(key ? { pttKey: key } : {}) });
  void applyMute();
}

export function setUserVolume(userId: string, gain: number): void {
  saveSettings({ volumes: { ...voiceSettings.value.volumes, [userId]: gain } });
  session?.setVolume(userId, gain);
}

export async function setInputDevice(deviceId: string): Promise<void> {
  saveSettings({ inputDeviceId: deviceId });
  await session?.setInputDevice(deviceId).catch(() => {
    micError.value = 'That microphone could not be opened.';
  });
}

export async function setOutputDevice(deviceId: string): Promise<void> {
  saveSettings({ outputDeviceId: deviceId });
  await session?.setOutputDevice(deviceId).catch(() => {});
}

export async function serverMute(userId: string, muted: boolean): Promise<void> {
  await sender?.send('voice_server_mute', { user_id: userId, muted }, true);
}

function startLevels(): void {
  clearInterval(levelTimer);
  levelTimer = setInterval(() => {
    if (!session) return;
    const { self, users } = session.levels();
    const me = currentUser.value?.id;
    voiceLevels.value = me ? { ...users, [me]: self } : users;
  }, 100);
}

/** Gateway events that concern our own session. */
export function applyVoiceEvent(ev: GatewayEvent): void {
  const d = ev.data;
  const me = currentUser.value?.id;
  switch (ev.type) {
    case 'voice_new_producer':
      if (session && d.channel_id === session.channelId && d.user_id !== me)
        void session.consume(d.user_id, d.producer_id);
      return;
    case 'voice_producer_closed':
      session?.producerClosed(d.producer_id);
      return;
    case 'voice_user_joined':
      if (session && d.channel_id === session.channelId && d.user_id !== me) roomChange?.('joined', d.user_id);
      return;
    case 'voice_user_left':
      if (session && d.channel_id === session.channelId && d.user_id !== me) roomChange?.('left', d.user_id);
      if (d.user_id === me && voiceChannelId.value === d.channel_id && voicePhase.value === 'connected') {
        // Removed by the server (moved, access lost, or this socket closed): say so, do not rejoin.
        if (d.reason === 'removed' || d.reason === 'moved') {
          voiceError.value = d.reason === 'removed' ? 'You were removed from the voice channel.' : null;
          void leaveVoice();
        }
      } else if (session && d.channel_id === session.channelId) session.userLeft(d.user_id);
      return;
    case 'voice_state_update':
      if (d.user_id === me) serverMuted.value = Boolean(d.server_muted);
      return;
    default:
      return;
  }
}

/** After the gateway reconnects the server has dropped our voice session: join again. */
export function onGatewayReady(reconnected: boolean): void {
  if (reconnected && voiceChannelId.value) {
    stopSession();
    attempt = Math.max(attempt, 1);
    void joinVoice(voiceChannelId.value, { e2ee: voiceE2ee.value });
  }
}

function isTyping(t: EventTarget | null): boolean {
  const el = t as HTMLElement | null;
  return Boolean(el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName)));
}

addEventListener('keydown', (e) => {
  if (!voiceSettings.value.pushToTalk || e.code !== voiceSettings.value.pttKey || e.repeat || isTyping(e.target))
    return;
  pttHeld = true;
  void applyMute();
});
addEventListener('keyup', (e) => {
  if (e.code !== voiceSettings.value.pttKey || !pttHeld) return;
  pttHeld = false;
  void applyMute();
});
addEventListener('blur', () => {
  if (pttHeld) {
    pttHeld = false;
    void applyMute();
  }
});
