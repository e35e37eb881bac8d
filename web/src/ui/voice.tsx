/**
 * Voice in the UI: the voice channel view (join / leave, who is in it with a speaking indicator,
 * per-user volume, server mute for those allowed, the channel's end-to-end encryption setting) and
 * the bar at the foot of the sidebar while connected (mute, deafen, leave, devices, push-to-talk).
 */
import { useEffect, useState } from 'preact/hooks';
import { api } from '../lib/api';
import { currentUser } from '../lib/session';
import type { Channel } from '../lib/types';
import { can, channelById, displayName, upsertChannel, voiceStates } from '../state/store';
import {
  joinVoice,
  leaveVoice,
  micError,
  SPEAKING_LEVEL,
  selfDeafened,
  selfMuted,
  serverMute,
  serverMuted,
  setInputDevice,
  setOutputDevice,
  setPushToTalk,
  setUserVolume,
  toggleDeafen,
  toggleMute,
  voiceChannelId,
  voiceE2ee,
  voiceError,
  voiceLevels,
  voicePhase,
  voiceSettings,
} from '../state/voice';
import { voiceKeyChanges, voiceKeyId } from '../state/voice-e2ee';
import { Dialog, ErrorNote, useAction } from './common';

export function joinChannel(c: Channel): void {
  void joinVoice(c.id, { e2ee: Boolean(c.e2ee_voice) });
}

function PhaseText() {
  const p = voicePhase.value;
  if (p === 'joining') return <>Connecting…</>;
  if (p === 'reconnecting') return <>Reconnecting…</>;
  if (p === 'connected') return <>Voice connected{voiceE2ee.value ? ', end-to-end encrypted' : ''}</>;
  return null;
}

export function VoiceView({ channel, guildId }: { channel: Channel; guildId: string }) {
  const here = voiceChannelId.value === channel.id;
  const people = voiceStates.value.filter((v) => v.channel_id === channel.id);
  const me = currentUser.value?.id;
  const mayMute = can(guildId, 'VOICE_MUTE_OTHERS');
  const { error, run, busy } = useAction();
  // The box shows the requested state while the change is on its way (then the channel's).
  const [wantE2ee, setWantE2ee] = useState<boolean | null>(null);
  return (
    <section class="voice-view" aria-label={`Voice channel ${channel.name}`}>
      <p class="voice-status" role="status">
        {here ? <PhaseText /> : 'Not connected.'}
      </p>
      {voiceError.value && (
        <p class="error" role="alert">
          {voiceError.value}
        </p>
      )}
      {here && micError.value && (
        <p class="error" role="alert">
          {micError.value}
        </p>
      )}
      {here && serverMuted.value && <p class="muted">A moderator has muted you in this guild.</p>}
      {channel.e2ee_voice && (
        <p class="muted">
          Voice here is end-to-end encrypted: the server and people who are not in the call cannot listen.
        </p>
      )}
      {here ? (
        <button type="button" class="danger" onClick={() => void leaveVoice()}>
          Leave voice
        </button>
      ) : (
        <button type="button" class="primary" onClick={() => joinChannel(channel)}>
          Join voice
        </button>
      )}
      {can(guildId, 'MANAGE_CHANNELS') && (
        <label class="check">
          <input
            type="checkbox"
            checked={wantE2ee ?? Boolean(channel.e2ee_voice)}
            disabled={busy}
            onChange={(e) => {
              const on = (e.currentTarget as HTMLInputElement).checked;
              setWantE2ee(on);
              void run(async () => {
                try {
                  const updated = await api<Channel>('PATCH', `/api/channels/${channel.id}`, {
                    body: { e2ee_voice: on },
                  });
                  upsertChannel(updated);
                } finally {
                  setWantE2ee(null);
                }
              });
            }}
          />{' '}
          End-to-end encrypted voice
        </label>
      )}
      <ErrorNote error={error} />
      <h2>In this channel — {people.length}</h2>
      <ul class="voice-people">
        {people.map((v) => {
          const level = voiceLevels.value[v.user_id] ?? 0;
          const speaking = here && level > SPEAKING_LEVEL;
          const volume = voiceSettings.value.volumes[v.user_id] ?? 1;
          return (
            <li
              key={v.user_id}
              class={speaking ? 'voice-person speaking' : 'voice-person'}
              data-user-id={v.user_id}
              data-level={here ? level.toFixed(4) : undefined}
            >
              <span class="speaking-dot" role="img" aria-label={speaking ? 'speaking' : 'not speaking'} />
              <bdi>{displayName(v.user_id)}</bdi>
              {v.muted && <span class="tag">muted</span>}
              {v.deafened && <span class="tag">deafened</span>}
              {v.server_muted && <span class="tag">server muted</span>}
              {here && v.user_id !== me && (
                <label class="volume">
                  <span class="sr-only">Volume of {displayName(v.user_id)}</span>
                  <input
                    type="range"
                    min={0}
                    max={200}
                    step={5}
                    value={Math.round(volume * 100)}
                    onInput={(e) => setUserVolume(v.user_id, Number((e.currentTarget as HTMLInputElement).value) / 100)}
                  />
                </label>
              )}
              {mayMute && v.user_id !== me && (
                <button
                  type="button"
                  onClick={() => void run(() => serverMute(v.user_id, !v.server_muted))}
                  aria-label={`${v.server_muted ? 'Server unmute' : 'Server mute'} ${displayName(v.user_id)}`}
                >
                  {v.server_muted ? 'Server unmute' : 'Server mute'}
                </button>
              )}
            </li>
          );
        })}
      </ul>
    </section>
  );
}

function DeviceSettings({ onClose }: { onClose: () => void }) {
  const [devices, setDevices] = useState<MediaDeviceInfo[]>([]);
  const [capturing, setCapturing] = useState(false);
  const s = voiceSettings.value;
  useEffect(() => {
    void navigator.mediaDevices?.enumerateDevices().then(setDevices);
  }, []);
  const inputs = devices.filter((d) => d.kind === 'audioinput');
  const outputs = devices.filter((d) => d.kind === 'audiooutput');
  useEffect(() => {
    if (!capturing) return;
    const onKey = (e: KeyboardEvent) => {
      e.preventDefault();
      setPushToTalk(true, e.code);
      setCapturing(false);
    };
    addEventListener('keydown', onKey, { once: true, capture: true });
    return () => removeEventListener('keydown', onKey, { capture: true });
  }, [capturing]);
  return (
    <Dialog title="Voice settings" onClose={onClose}>
      <label class="field">
        <span>Microphone</span>
        <select
          value={s.inputDeviceId}
          onChange={(e) => void setInputDevice((e.currentTarget as HTMLSelectElement).value)}
        >
          <option value="">Default</option>
          {inputs.map((d, i) => (
            <option key={d.deviceId} value={d.deviceId}>
              {d.label || `Microphone ${i + 1}`}
            </option>
          ))}
        </select>
      </label>
      <label class="field">
        <span>Speaker</span>
        <select
          value={s.outputDeviceId}
          onChange={(e) => void setOutputDevice((e.currentTarget as HTMLSelectElement).value)}
        >
          <option value="">Default</option>
          {outputs.map((d, i) => (
            <option key={d.deviceId} value={d.deviceId}>
              {d.label || `Speaker ${i + 1}`}
            </option>
          ))}
        </select>
      </label>
      <label class="check">
        <input
          type="checkbox"
          checked={s.pushToTalk}
          onChange={(e) => setPushToTalk((e.currentTarget as HTMLInputElement).checked)}
        />{' '}
        Push to talk
      </label>
      {s.pushToTalk && (
        <p>
          Talk while holding <kbd>{s.pttKey.replace(/^Key/, '')}</kbd>{' '}
          <button type="button" onClick={() => setCapturing(true)} aria-pressed={capturing}>
            {capturing ? 'Press a key…' : 'Change key'}
          </button>
        </p>
      )}
    </Dialog>
  );
}

export function VoiceBar() {
  const [settings, setSettings] = useState(false);
  const id = voiceChannelId.value;
  if (!id) return voiceError.value ? <p class="voice-bar error">{voiceError.value}</p> : null;
  const c = channelById(id);
  const me = currentUser.value?.id;
  const talking = me ? (voiceLevels.value[me] ?? 0) > SPEAKING_LEVEL : false;
  return (
    <section class="voice-bar" aria-label="Voice connection">
      <p>
        <span class={talking ? 'speaking-dot on' : 'speaking-dot'} aria-hidden="true" />
        <PhaseText /> — <bdi>{c?.name ?? 'voice'}</bdi>
      </p>
      {voiceE2ee.value && voiceKeyId.value !== null && (
        <p class="muted voice-key" data-key-id={voiceKeyId.value} data-key-changes={voiceKeyChanges.value}>
          Sender key #{voiceKeyId.value}, replaced {voiceKeyChanges.value - 1} times in this call
        </p>
      )}
      <div class="voice-controls">
        <button type="button" aria-pressed={selfMuted.value} onClick={() => void toggleMute()}>
          {selfMuted.value ? 'Unmute' : 'Mute'}
        </button>
        <button type="button" aria-pressed={selfDeafened.value} onClick={() => void toggleDeafen()}>
          {selfDeafened.value ? 'Undeafen' : 'Deafen'}
        </button>
        <button type="button" onClick={() => setSettings(true)}>
          Voice settings
        </button>
        <button type="button" class="danger" onClick={() => void leaveVoice()}>
          Leave
        </button>
      </div>
      {voiceSettings.value.pushToTalk && (
        <p class="muted">Push to talk: hold {voiceSettings.value.pttKey.replace(/^Key/, '')}</p>
      )}
      {settings && <DeviceSettings onClose={() => setSettings(false)} />}
    </section>
  );
}
