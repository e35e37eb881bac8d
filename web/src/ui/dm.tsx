/**
 * Direct messages: the list of conversations, "New message" (people who share a guild with us), and
 * a conversation view whose messages are end-to-end encrypted (state/dm.ts). The Olm device is
 * unlocked (and its chunk loaded) only when a conversation is opened.
 */
import { useEffect, useState } from 'preact/hooks';
import { linkClick, navigate } from '../lib/router';
import { currentUser } from '../lib/session';
import { shortTime } from '../lib/text';
import { type Dm, dms, dmTexts, leaveDm, openDm, readDmMessages, sendDm, unlockDm } from '../state/dm';
import { device } from '../state/e2ee';
import { applyMessageEvent, loadLatest, logOf } from '../state/messages';
import { displayName, guildList, loadMembers, readyOnce, users } from '../state/store';
import { ConnectionBanner } from './chat';
import { Dialog, ErrorNote, useAction } from './common';
import { UnlockDialog } from './e2ee';

const dmTitle = (d: Dm) =>
  d.recipient_ids.length === 0 ? 'Nobody else' : d.recipient_ids.map((u) => displayName(u)).join(', ');

function NewMessage({ onClose }: { onClose: () => void }) {
  const [picked, setPicked] = useState<string[]>([]);
  const { busy, error, run } = useAction();
  const me = currentUser.value?.id;
  useEffect(() => {
    for (const g of guildList.value) if (!g.members) void loadMembers(g.guild.id).catch(() => {});
  }, []);
  const people = Object.values(users.value)
    .filter((u) => u.id !== me)
    .sort((a, b) => (a.display_name || a.username).localeCompare(b.display_name || b.username));
  return (
    <Dialog title="New message" onClose={onClose}>
      <form
        aria-label="New message"
        onSubmit={(e) => {
          e.preventDefault();
          void run(async () => {
            const d = await openDm(picked);
            onClose();
            navigate(`/dm/${d.id}`);
          });
        }}
      >
        <p class="muted">Pick one person for a conversation between the two of you, or up to nine for a group.</p>
        <fieldset>
          <legend>People who share a guild with you</legend>
          {people.length === 0 && <p class="muted">Nobody yet.</p>}
          {people.map((u) => (
            <label key={u.id} class="check">
              <input
                type="checkbox"
                checked={picked.includes(u.id)}
                onChange={(e) =>
                  setPicked((p) =>
                    (e.currentTarget as HTMLInputElement).checked ? [...p, u.id] : p.filter((x) => x !== u.id),
                  )
                }
              />{' '}
              <bdi>{u.display_name || u.username}</bdi>
            </label>
          ))}
        </fieldset>
        <ErrorNote error={error} />
        <button type="submit" class="primary" disabled={busy || picked.length === 0 || picked.length > 9}>
          Start
        </button>
      </form>
    </Dialog>
  );
}

function DmList({ activeId }: { activeId: string | null }) {
  const [creating, setCreating] = useState(false);
  return (
    <nav class="sidebar" aria-label="Direct messages">
      <header class="sidebar-head">
        <h2>Direct messages</h2>
        <button type="button" onClick={() => setCreating(true)}>
          New message
        </button>
      </header>
      <ul class="channels">
        {dms.value.map((d) => (
          <li key={d.id}>
            <a
              href={`/dm/${d.id}`}
              onClick={linkClick}
              class={d.id === activeId ? 'active' : undefined}
              aria-current={d.id === activeId ? 'page' : undefined}
            >
              <bdi>{dmTitle(d)}</bdi>
            </a>
          </li>
        ))}
      </ul>
      <a href="/channels" onClick={linkClick}>
        Back to guilds
      </a>
      {creating && <NewMessage onClose={() => setCreating(false)} />}
    </nav>
  );
}

function DmConversation({ dm }: { dm: Dm }) {
  const log = logOf(dm.id).value;
  const dev = device.value;
  const texts = dmTexts.value;
  const [draft, setDraft] = useState('');
  const send = useAction();
  const unlock = useAction();
  const leave = useAction();

  useEffect(() => {
    void loadLatest(dm.id);
    if (!device.value) void unlock.run(async () => void (await unlockDm()));
  }, [dm.id]);
  useEffect(() => {
    if (!dev) return;
    const todo = log.items.filter((m) => !m.local && !(texts[m.id] && 'text' in texts[m.id]!));
    if (todo.length) void readDmMessages(todo);
  }, [dev, log.items]);

  return (
    <>
      <header class="channel-head">
        <h1>
          <bdi>{dmTitle(dm)}</bdi>
        </h1>
        <p class="topic">End-to-end encrypted</p>
        <button
          type="button"
          disabled={leave.busy}
          onClick={() =>
            void leave.run(async () => {
              await leaveDm(dm.id);
              navigate('/dm', true);
            })
          }
        >
          Leave
        </button>
      </header>
      <ErrorNote error={leave.error} />
      {!dev && (
        <div class="empty">
          <p>This conversation is end-to-end encrypted. Unlock this browser’s keys to read it.</p>
          <ErrorNote error={unlock.error} />
          <button type="button" onClick={() => void unlock.run(async () => void (await unlockDm()))}>
            Unlock
          </button>
        </div>
      )}
      {dev && (
        <ol class="dm-messages" aria-label="Messages">
          {log.items
            .filter((m) => !m.local)
            .map((m) => {
              const t = texts[m.id];
              return (
                <li key={m.id} class="dm-message" data-message-id={m.id}>
                  <span class="author">
                    <bdi>{displayName(m.author_id)}</bdi>
                  </span>{' '}
                  <time dateTime={m.created_at}>{shortTime(m.created_at)}</time>
                  {t === undefined ? (
                    <p class="muted">Decrypting…</p>
                  ) : 'text' in t ? (
                    <p class="dm-text" dir="auto">
                      {t.text}
                    </p>
                  ) : (
                    <p class="dm-notice muted">{t.notice}</p>
                  )}
                </li>
              );
            })}
        </ol>
      )}
      {log.error && <ErrorNote error={log.error} />}
      <form
        id="composer"
        class="composer"
        aria-label="Send an encrypted message"
        onSubmit={(e) => {
          e.preventDefault();
          const text = draft.trim();
          if (!text) return;
          void send.run(async () => {
            const msg = await sendDm(dm, text);
            setDraft('');
            applyMessageEvent('message_new', msg);
          });
        }}
      >
        <ErrorNote error={send.error} />
        <textarea
          aria-label="Message"
          value={draft}
          maxLength={2000}
          onInput={(e) => setDraft((e.currentTarget as HTMLTextAreaElement).value)}
        />
        <button type="submit" disabled={send.busy || !draft.trim()}>
          Send
        </button>
      </form>
    </>
  );
}

export function DirectMessages({ channelId }: { channelId?: string }) {
  const dm = channelId ? dms.value.find((d) => d.id === channelId) : undefined;
  if (!readyOnce.value)
    return (
      <main class="center" id="main">
        <ConnectionBanner />
        <p class="muted">Loading…</p>
      </main>
    );
  return (
    <div class="chat dm-screen">
      <ConnectionBanner />
      <DmList activeId={dm?.id ?? null} />
      <main class="channel-view" id="main">
        {dm ? (
          <DmConversation key={dm.id} dm={dm} />
        ) : (
          <div class="empty">
            <p>
              {channelId
                ? 'This conversation does not exist or you left it.'
                : 'Pick a conversation, or start one with “New message”.'}
            </p>
          </div>
        )}
      </main>
      <UnlockDialog />
    </div>
  );
}
