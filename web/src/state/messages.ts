/**
 * Message logs per channel: history pages (cursor paging, newest first on the wire, kept oldest →
 * newest here), live events, optimistic sends with retry, and reconciliation after a reconnect.
 * A log never holds the same message twice: real messages are keyed by id, and a pending local
 * message is dropped as soon as its real copy is seen (by the POST's answer or by `message_new`).
 */
import { type Signal, signal } from '@preact/signals';
import { ApiError, api, describeError } from '../lib/api';
import { currentUser } from '../lib/session';
import type { Message } from '../lib/types';

export interface LocalSend {
  tempId: string;
  state: 'sending' | 'failed';
  error?: string;
  attachmentIds: string[];
  /** The send failed without an answer: it may have arrived; check history before retrying. */
  ambiguous?: boolean;
  startedAt: number;
}

export type LogItem = Message & { local?: LocalSend };

export interface ChannelLog {
  items: LogItem[];
  /** The oldest message of the channel is loaded. */
  atStart: boolean;
  loaded: boolean;
  loading: boolean;
  error: string | null;
}

const PAGE = 50;
const OLDER_PAGE = 100;
const logs = new Map<string, Signal<ChannelLog>>();
let tempCounter = 0;

const emptyLog = (): ChannelLog => ({ items: [], atStart: false, loaded: false, loading: false, error: null });

export function logOf(channelId: string): Signal<ChannelLog> {
  let s = logs.get(channelId);
  if (!s) {
    s = signal(emptyLog());
    logs.set(channelId, s);
  }
  return s;
}

export function resetLogs(): void {
  logs.clear();
}

const byId = (a: Message, b: Message) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Inserts or replaces real messages, keeping id order; local sends stay last. */
function merge(items: LogItem[], incoming: Message[]): LogItem[] {
  if (incoming.length === 0) return items;
  const real = items.filter((i) => !i.local);
  let local = items.filter((i) => i.local);
  const index = new Map(real.map((m, i) => [m.id, i]));
  const out = [...real];
  let appended = false;
  for (const m of incoming) {
    const at = index.get(m.id);
    if (at !== undefined) out[at] = m;
    else {
      index.set(m.id, out.length);
      out.push(m);
      appended = true;
    }
    // Our own message seen for real: its pending copy goes.
    if (m.author_id === currentUser.value?.id) {
      const i = local.findIndex(
        (l) =>
          l.local!.state === 'sending' &&
          l.content === m.content &&
          Date.parse(m.created_at) >= l.local!.startedAt - 60_000,
      );
      if (i >= 0) local = local.filter((_, j) => j !== i);
    }
  }
  if (appended) {
    const first = real[0]?.id ?? '';
    const last = real[real.length - 1]?.id ?? '';
    const fresh = out.slice(real.length);
    // Common cases: everything new sorts after what we had (live), or before it (an older page,
    // given oldest first). Otherwise sort; ids are time-ordered.
    if (fresh.every((m) => m.id > last)) {
      if (fresh.some((m, i) => i > 0 && m.id < fresh[i - 1]!.id)) out.sort(byId);
    } else if (fresh.every((m, i) => m.id < first && (i === 0 || m.id > fresh[i - 1]!.id))) {
      return [...fresh, ...out.slice(0, real.length), ...local];
    } else out.sort(byId);
  }
  return [...out, ...local];
}

function update(channelId: string, fn: (log: ChannelLog) => ChannelLog): void {
  const s = logOf(channelId);
  s.value = fn(s.value);
}

export function applyMessageEvent(_type: string, m: Message): void {
  const s = logs.get(m.channel_id);
  if (!s?.value.loaded) return; // not open yet: its history loads when it is
  update(m.channel_id, (log) => ({ ...log, items: merge(log.items, [m]) }));
}

export async function loadLatest(channelId: string): Promise<void> {
  const s = logOf(channelId);
  if (s.value.loading || s.value.loaded) return;
  update(channelId, (l) => ({ ...l, loading: true, error: null }));
  try {
    const page = await api<Message[]>('GET', `/api/channels/${channelId}/messages?limit=${PAGE}`);
    update(channelId, (l) => ({
      ...l,
      items: merge(l.items, page.reverse()),
      atStart: page.length < PAGE,
      loaded: true,
      loading: false,
    }));
  } catch (e) {
    update(channelId, (l) => ({ ...l, loading: false, error: describeError(e) }));
  }
}

export async function loadOlder(channelId: string): Promise<void> {
  const s = logOf(channelId);
  const log = s.value;
  if (log.loading || log.atStart || !log.loaded) return;
  const oldest = log.items.find((i) => !i.local);
  if (!oldest) return;
  update(channelId, (l) => ({ ...l, loading: true }));
  try {
    const page = await api<Message[]>(
      'GET',
      `/api/channels/${channelId}/messages?before=${encodeURIComponent(oldest.id)}&limit=${OLDER_PAGE}`,
    );
    update(channelId, (l) => ({
      ...l,
      items: merge(l.items, page.reverse()),
      atStart: page.length < OLDER_PAGE,
      loading: false,
    }));
  } catch (e) {
    update(channelId, (l) => ({ ...l, loading: false, error: describeError(e) }));
  }
}

/** Fetches everything after the newest message we hold (after a reconnect). */
async function catchUp(channelId: string): Promise<void> {
  for (let pages = 0; pages < 20; pages++) {
    const real = logOf(channelId).value.items.filter((i) => !i.local);
    const newest = real[real.length - 1];
    if (!newest) {
      logOf(channelId).value = { ...logOf(channelId).value, loaded: false };
      return loadLatest(channelId);
    }
    const page = await api<Message[]>(
      'GET',
      `/api/channels/${channelId}/messages?after=${encodeURIComponent(newest.id)}&limit=${OLDER_PAGE}`,
    );
    update(channelId, (l) => ({ ...l, items: merge(l.items, page) }));
    if (page.length < OLDER_PAGE) return;
  }
}

export async function reconcileLoadedLogs(): Promise<void> {
  await Promise.all([...logs.entries()].filter(([, s]) => s.value.loaded).map(([id]) => catchUp(id).catch(() => {})));
}

function setLocal(channelId: string, tempId: string, patch: Partial<LocalSend> | null): void {
  update(channelId, (l) => ({
    ...l,
    items: l.items.flatMap((i) =>
      i.local?.tempId !== tempId ? [i] : patch === null ? [] : [{ ...i, local: { ...i.local, ...patch } }],
    ),
  }));
}

async function deliver(channelId: string, item: LogItem): Promise<void> {
  const local = item.local!;
  try {
    const body: Record<string, unknown> = { content: item.content };
    if (item.reply_to) body.reply_to = item.reply_to;
    if (local.attachmentIds.length) body.attachment_ids = local.attachmentIds;
    const msg = await api<Message>('POST', `/api/channels/${channelId}/messages`, { body });
    setLocal(channelId, local.tempId, null);
    update(channelId, (l) => ({ ...l, items: merge(l.items, [msg]) }));
  } catch (e) {
    const ambiguous = e instanceof ApiError && e.ambiguous;
    setLocal(channelId, local.tempId, { state: 'failed', error: describeError(e), ambiguous });
  }
}

/** Shows the message at once and sends it; a failure leaves it with a Retry button. */
export function sendMessage(channelId: string, content: string, replyTo: string | null, attachmentIds: string[] = []) {
  const me = currentUser.value;
  if (!me) return;
  const tempId = `local-${Date.now()}-${tempCounter++}`;
  const item: LogItem = {
    id: `~${tempId}`,
    channel_id: channelId,
    author_id: me.id,
    content,
    encrypted: false,
    nonce: null,
    reply_to: replyTo,
    attachments: [],
    created_at: new Date().toISOString(),
    edited_at: null,
    deleted_at: null,
    local: { tempId, state: 'sending', attachmentIds, startedAt: Date.now() },
  };
  update(channelId, (l) => ({ ...l, items: [...l.items, item] }));
  void deliver(channelId, item);
}

export async function retrySend(channelId: string, tempId: string): Promise<void> {
  const item = logOf(channelId).value.items.find((i) => i.local?.tempId === tempId);
  if (item?.local?.state !== 'failed') return;
  // Claimed at once: a second ready (resume_failed brings one) must not start a second send.
  setLocal(channelId, tempId, { state: 'sending', error: undefined });
  if (item.local.ambiguous) {
    // The first attempt may have arrived although its answer did not: look before sending again.
    await catchUp(channelId).catch(() => {});
    const seen = logOf(channelId).value.items.some(
      (i) =>
        !i.local &&
        i.author_id === item.author_id &&
        i.content === item.content &&
        Date.parse(i.created_at) >= item.local!.startedAt - 60_000,
    );
    if (seen) {
      setLocal(channelId, tempId, null);
      return;
    }
  }
  setLocal(channelId, tempId, { ambiguous: false });
  await deliver(channelId, { ...item, local: { ...item.local, state: 'sending' } });
}

/** After a reconnect: sends that failed because the server was unreachable go again. */
export async function retryFailedSends(): Promise<void> {
  for (const [channelId, s] of logs) {
    for (const item of s.value.items) {
      if (item.local?.state === 'failed' && item.local.ambiguous) await retrySend(channelId, item.local.tempId);
    }
  }
}

export function discardSend(channelId: string, tempId: string): void {
  setLocal(channelId, tempId, null);
}

export async function editMessage(m: Message, content: string): Promise<void> {
  const updated = await api<Message>('PATCH', `/api/messages/${m.id}`, { body: { content } });
  update(m.channel_id, (l) => ({ ...l, items: merge(l.items, [updated]) }));
}

export async function deleteMessage(m: Message): Promise<void> {
  await api('DELETE', `/api/messages/${m.id}`);
  const now = new Date().toISOString();
  update(m.channel_id, (l) => ({
    ...l,
    items: merge(l.items, [{ ...m, content: '[deleted]', deleted_at: m.deleted_at ?? now, attachments: [] }]),
  }));
}
