/**
 * The chat screen: guild rail, channel sidebar (text and voice channels, the latter with who is in
 * them), the open channel and the member list. Every control is shown only when the user's
 * guild-level permissions allow it; the server still decides, and its refusal is shown.
 */
import { useEffect, useState } from 'preact/hooks';
import { api } from '../lib/api';
import { linkClick, navigate } from '../lib/router';
import { currentUser } from '../lib/session';
import { initials } from '../lib/text';
import type { Channel, Guild, Role } from '../lib/types';
import type { LogItem } from '../state/messages';
import {
  activeChannelId,
  addGuild,
  can,
  connection,
  displayName,
  type GuildView,
  guildList,
  guilds,
  loadMembers,
  presence,
  readyOnce,
  unread,
  voiceStates,
} from '../state/store';
import { voiceChannelId } from '../state/voice';
import { Dialog, ErrorNote, Field, useAction } from './common';
import { UnlockDialog } from './e2ee';
import { Composer, MessageList, TypingLine } from './messages';
import { ChannelSettings, CreateChannel, GuildMenu, MemberDialog } from './moderation';
import { joinChannel, VoiceBar, VoiceView } from './voice';

export function ConnectionBanner() {
  const s = connection.value;
  if (s === 'ready' || s === 'idle') return null;
  return (
    <div class="banner" role="status">
      {s === 'connecting'
        ? 'Connecting…'
        : 'Reconnecting… messages you send will be delivered when the connection is back.'}
    </div>
  );
}

function CreateGuild({ onClose }: { onClose: () => void }) {
  const [name, setName] = useState('');
  const { busy, error, run } = useAction();
  return (
    <Dialog title="Create a guild" onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void run(async () => {
            const g = await api<Guild & { channels: Channel[]; roles: Role[] }>('POST', '/api/guilds', {
              body: { name: name.trim() },
            });
            addGuild(g);
            onClose();
            navigate(`/channels/${g.id}`);
          });
        }}
      >
        <Field label="Guild name" value={name} onInput={setName} required autoFocus maxLength={100} />
        <ErrorNote error={error} />
        <button type="submit" class="primary" disabled={busy}>
          Create
        </button>
      </form>
    </Dialog>
  );
}

function GuildRail({ activeGuildId }: { activeGuildId: string | null }) {
  const [creating, setCreating] = useState(false);
  return (
    <nav class="rail" aria-label="Guilds">
      <ul>
        {guildList.value.map(({ guild, channels }) => {
          const count = channels.reduce((n, c) => n + (unread.value[c.id] ?? 0), 0);
          return (
            <li key={guild.id}>
              <a
                href={`/channels/${guild.id}`}
                onClick={linkClick}
                class={guild.id === activeGuildId ? 'guild-icon active' : 'guild-icon'}
                aria-current={guild.id === activeGuildId ? 'page' : undefined}
                title={guild.name}
              >
                <span aria-hidden="true">{initials(guild.name)}</span>
                <span class="sr-only">
                  <bdi>{guild.name}</bdi>
                  {count ? `, ${count} unread` : ''}
                </span>
                {count > 0 && (
                  <span class="badge" aria-hidden="true">
                    {count > 99 ? '99+' : count}
                  </span>
                )}
              </a>
            </li>
          );
        })}
        <li>
          <button type="button" class="guild-icon add" aria-label="Create a guild" onClick={() => setCreating(true)}>
            +
          </button>
        </li>
      </ul>
      <a href="/dm" onClick={linkClick} class="guild-icon" title="Direct messages">
        <span aria-hidden="true">✉</span>
        <span class="sr-only">Direct messages</span>
      </a>
      <a href="/settings" onClick={linkClick} class="guild-icon" title="Settings">
        <span aria-hidden="true">⚙</span>
        <span class="sr-only">Account settings</span>
      </a>
      {creating && <CreateGuild onClose={() => setCreating(false)} />}
    </nav>
  );
}

function ChannelSidebar({ view, channelId }: { view: GuildView; channelId: string | null }) {
  const [creating, setCreating] = useState<'text' | 'voice' | null>(null);
  const manage = can(view.guild.id, 'MANAGE_CHANNELS');
  const section = (type: 'text' | 'voice', title: string) => (
    <section class="channel-section" aria-label={title}>
      <h3>
        {title}
        {manage && (
          <button type="button" class="icon" aria-label={`Create ${type} channel`} onClick={() => setCreating(type)}>
            +
          </button>
        )}
      </h3>
      <ul>
        {view.channels
          .filter((c) => c.type === type)
          .map((c) => {
            const n = unread.value[c.id] ?? 0;
            const inVoice = voiceStates.value.filter((v) => v.channel_id === c.id);
            return (
              <li key={c.id} class={c.id === channelId ? 'channel active' : 'channel'}>
                {type === 'text' ? (
                  <a
                    href={`/channels/${view.guild.id}/${c.id}`}
                    onClick={linkClick}
                    aria-current={c.id === channelId ? 'page' : undefined}
                    class={n ? 'unread' : undefined}
                  >
                    <span aria-hidden="true"># </span>
                    <bdi>{c.name}</bdi>
                    {n > 0 && <span class="badge">{n > 99 ? '99+' : n}</span>}
                    {n > 0 && <span class="sr-only"> unread</span>}
                  </a>
                ) : (
                  <a
                    class="voice-channel"
                    href={`/channels/${view.guild.id}/${c.id}`}
                    aria-current={c.id === channelId ? 'page' : undefined}
                    onClick={(e) => {
                      linkClick(e);
                      // Clicking a voice channel joins it (once; another click does not rejoin).
                      if (voiceChannelId.value !== c.id) joinChannel(c);
                    }}
                  >
                    <span aria-hidden="true">♪ </span>
                    <bdi>{c.name}</bdi>
                    {c.e2ee_voice ? (
                      <span class="tag" title="End-to-end encrypted voice">
                        e2ee
                      </span>
                    ) : null}
                    {c.user_limit ? (
                      <span class="muted">
                        {' '}
                        ({inVoice.length}/{c.user_limit})
                      </span>
                    ) : null}
                  </a>
                )}
                {manage && (
                  <a
                    class="icon channel-gear"
                    href={`/channels/${view.guild.id}/${c.id}/settings`}
                    onClick={linkClick}
                    aria-label={`Edit channel ${c.name}`}
                  >
                    ⚙
                  </a>
                )}
                {type === 'voice' && inVoice.length > 0 && (
                  <ul class="voice-members" aria-label={`In ${c.name}`}>
                    {inVoice.map((v) => (
                      <li key={v.user_id}>
                        <bdi>{displayName(v.user_id)}</bdi>
                        {v.muted ? <span class="muted"> (muted)</span> : null}
                      </li>
                    ))}
                  </ul>
                )}
              </li>
            );
          })}
      </ul>
    </section>
  );
  return (
    <nav class="sidebar" aria-label="Channels">
      <GuildMenu view={view} />
      {section('text', 'Text channels')}
      {section('voice', 'Voice channels')}
      <VoiceBar />
      <p class="me">
        Signed in as <bdi>{currentUser.value?.username}</bdi>
      </p>
      {creating && <CreateChannel guildId={view.guild.id} type={creating} onClose={() => setCreating(null)} />}
    </nav>
  );
}

const STATUS_LABEL: Record<string, string> = {
  online: 'online',
  idle: 'idle',
  dnd: 'do not disturb',
  offline: 'offline',
};

function MemberList({ view }: { view: GuildView }) {
  const [selected, setSelected] = useState<string | null>(null);
  const { error, run } = useAction();
  useEffect(() => {
    if (!view.members) void run(() => loadMembers(view.guild.id));
  }, [view.guild.id]);
  const roleById = new Map(view.roles.map((r) => [r.id, r]));
  const members = [...(view.members ?? [])].sort((a, b) =>
    (a.user.display_name || a.user.username).localeCompare(b.user.display_name || b.user.username),
  );
  return (
    <aside class="members" aria-label="Members">
      <h3>Members — {view.membersCount}</h3>
      <ErrorNote error={error} />
      <ul>
        {members.map((m) => {
          const status =
            m.user.id === currentUser.value?.id && connection.value === 'ready'
              ? 'online'
              : (presence.value[m.user.id] ?? 'offline');
          // Role colours are the guild's choice and may not meet contrast: shown as swatches, never as text colour.
          return (
            <li key={m.user.id}>
              <button type="button" class="member" onClick={() => setSelected(m.user.id)}>
                <span class={`presence ${status}`} role="img" aria-label={STATUS_LABEL[status] ?? status} />
                <bdi class="name">{m.nickname || m.user.display_name || m.user.username}</bdi>
                {view.guild.owner_id === m.user.id && <span class="tag">owner</span>}
              </button>
              {m.roles.length > 0 && (
                <ul class="role-chips" aria-label="Roles">
                  {m.roles
                    .map((id) => roleById.get(id))
                    .filter((r): r is Role => Boolean(r))
                    .map((r) => (
                      <li key={r.id}>
                        <span class="swatch" style={r.color ? { background: r.color } : undefined} aria-hidden="true" />
                        <bdi>{r.name}</bdi>
                      </li>
                    ))}
                </ul>
              )}
            </li>
          );
        })}
      </ul>
      {selected && <MemberDialog view={view} userId={selected} onClose={() => setSelected(null)} />}
    </aside>
  );
}

export function Chat({ guildId, channelId, settings }: { guildId?: string; channelId?: string; settings?: boolean }) {
  const [replyTo, setReplyTo] = useState<LogItem | null>(null);
  const [panel, setPanel] = useState<'none' | 'nav' | 'members'>('none');
  const [dropped, setDropped] = useState<File[] | null>(null);
  const [dragging, setDragging] = useState(false);
  const list = guildList.value;
  const view = guildId ? guilds.value[guildId] : list[0];
  const textChannels = view?.channels.filter((c) => c.type === 'text') ?? [];
  const channel = view?.channels.find((c) => c.id === channelId) ?? (channelId ? undefined : textChannels[0]);
  const viewChannel = channel?.type === 'text' ? channel : undefined;

  useEffect(() => {
    // `/` and `/channels/<guild>` land on a real channel, so the URL can be shared and reloaded; a
    // guild we are no longer in (kicked, left, deleted) sends us to the first one we have.
    if (readyOnce.value && guildId && !view && list.length > 0) navigate('/', true);
    else if (readyOnce.value && view && !guildId) navigate(`/channels/${view.guild.id}`, true);
    else if (readyOnce.value && view && channel && !channelId && channel.type === 'text')
      navigate(`/channels/${view.guild.id}/${channel.id}`, true);
  }, [readyOnce.value, view?.guild.id, channel?.id, guildId, channelId, list.length]);

  useEffect(() => {
    activeChannelId.value = viewChannel?.id ?? null;
    setReplyTo(null);
    setPanel('none');
    return () => {
      activeChannelId.value = null;
    };
  }, [viewChannel?.id]);

  if (!readyOnce.value)
    return (
      <main class="center" id="main">
        <ConnectionBanner />
        <p class="muted">Loading…</p>
      </main>
    );

  return (
    <div class={`chat panel-${panel}`}>
      <a href="#composer" class="skip">
        Skip to message box
      </a>
      <ConnectionBanner />
      <GuildRail activeGuildId={view?.guild.id ?? null} />
      {view ? (
        <ChannelSidebar view={view} channelId={channel?.id ?? null} />
      ) : (
        <nav class="sidebar" aria-label="Channels" />
      )}
      <main
        class={dragging ? 'channel-view dragging' : 'channel-view'}
        id="main"
        onDragOver={(e) => {
          if (viewChannel && e.dataTransfer?.types.includes('Files')) {
            e.preventDefault();
            setDragging(true);
          }
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          setDragging(false);
          const files = [...(e.dataTransfer?.files ?? [])];
          if (viewChannel && files.length) {
            e.preventDefault();
            setDropped(files);
          }
        }}
      >
        <header class="channel-head">
          <button
            type="button"
            class="icon only-narrow"
            aria-label="Show channels"
            aria-expanded={panel === 'nav'}
            onClick={() => setPanel(panel === 'nav' ? 'none' : 'nav')}
          >
            ☰
          </button>
          <h1>
            {channel?.type === 'voice' ? (
              <>
                <span aria-hidden="true">♪ </span>
                <bdi>{channel.name}</bdi>
              </>
            ) : viewChannel ? (
              <>
                <span aria-hidden="true"># </span>
                <bdi>{viewChannel.name}</bdi>
              </>
            ) : view ? (
              <bdi>{view.guild.name}</bdi>
            ) : (
              'Welcome'
            )}
          </h1>
          {viewChannel?.topic && (
            <p class="topic" dir="auto">
              {viewChannel.topic}
            </p>
          )}
          {view && (
            <button
              type="button"
              class="members-toggle"
              aria-expanded={panel === 'members'}
              onClick={() => setPanel(panel === 'members' ? 'none' : 'members')}
            >
              Members
            </button>
          )}
        </header>
        {viewChannel ? (
          <>
            <MessageList key={viewChannel.id} channel={viewChannel} onReply={setReplyTo} />
            <TypingLine channelId={viewChannel.id} />
            <div id="composer">
              <Composer
                key={viewChannel.id}
                channel={viewChannel}
                replyTo={replyTo}
                clearReply={() => setReplyTo(null)}
                droppedFiles={dropped}
                clearDropped={() => setDropped(null)}
              />
            </div>
          </>
        ) : channel?.type === 'voice' && view ? (
          <VoiceView channel={channel} guildId={view.guild.id} />
        ) : (
          <div class="empty">
            {!view && <p>You are not in any guild yet. Create one with the + button, or open an invite link.</p>}
            {view && channelId && !channel && <p>This channel does not exist or you cannot see it.</p>}
            {view && !channelId && textChannels.length === 0 && <p>This guild has no text channel you can see.</p>}
          </div>
        )}
      </main>
      {view && <MemberList view={view} />}
      <UnlockDialog />
      {view && settings && channelId && (
        <ChannelSettings
          view={view}
          channelId={channelId}
          onClose={() => navigate(`/channels/${view.guild.id}/${channelId}`, true)}
        />
      )}
    </div>
  );
}
