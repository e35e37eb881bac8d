/**
 * The message view: a virtualised, bottom-anchored list (only the rows in and near the viewport are
 * in the DOM; heights are measured as rows render, estimated before), history paging when the top
 * comes near, a "new messages" divider, and the composer with uploads, replies and typing.
 */
import { Component } from 'preact';
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { describeError, fetchBlob, uploadFile } from '../lib/api';
import { currentUser } from '../lib/session';
import { formatBytes, Linkified, longTime, shortTime } from '../lib/text';
import type { Attachment, Channel } from '../lib/types';
import {
  deleteMessage,
  discardSend,
  editMessage,
  type LogItem,
  loadLatest,
  loadOlder,
  logOf,
  retrySend,
  sendMessage,
} from '../state/messages';
import { can, displayName, gateway, typing, unread } from '../state/store';
import { useAction } from './common';

const ESTIMATE = 52;
const OVERSCAN = 600;
const LAST_READ = 'voicechat.last_read.';

// ---------------------------------------------------------------------------------------------
// Attachments: fetched with the bearer token into blob: URLs (kept while the page lives).

const blobUrls = new Map<string, Promise<string>>();
const blobUrl = (a: Attachment) => {
  let p = blobUrls.get(a.id);
  if (!p) {
    p = fetchBlob(a.url).then((b) => URL.createObjectURL(b));
    p.catch(() => blobUrls.delete(a.id));
    blobUrls.set(a.id, p);
  }
  return p;
};

function AttachmentView({ a }: { a: Attachment }) {
  const [src, setSrc] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const image = a.mime_type.startsWith('image/');
  useEffect(() => {
    if (!image) return;
    let live = true;
    blobUrl(a).then(
      (u) => live && setSrc(u),
      (e) => live && setError(describeError(e)),
    );
    return () => {
      live = false;
    };
  }, [a.id]);
  const download = async () => {
    try {
      const href = await blobUrl(a);
      const link = document.createElement('a');
      link.href = href;
      link.download = a.filename;
      link.rel = 'noopener';
      link.click();
    } catch (e) {
      setError(describeError(e));
    }
  };
  return (
    <div class="attachment">
      {image && src && <img src={src} alt={a.filename} class="preview" loading="lazy" />}
      {image && !src && !error && <div class="preview placeholder" aria-hidden="true" />}
      <button type="button" class="file" onClick={() => void download()}>
        <span aria-hidden="true">⬇ </span>
        <bdi class="filename">{a.filename}</bdi> <span class="muted">({formatBytes(a.size_bytes)})</span>
      </button>
      {error && (
        <span class="error" role="alert">
          {error}
        </span>
      )}
    </div>
  );
}

// ---------------------------------------------------------------------------------------------
// One message.

interface RowProps {
  item: LogItem;
  replied?: LogItem;
  newDivider: boolean;
  canManage: boolean;
  onReply: (m: LogItem) => void;
  measure: (el: HTMLElement | null, id: string) => void;
}

function MessageBody(props: RowProps & { editing: boolean; setEditing: (v: boolean) => void }) {
  const { item, replied } = props;
  const mine = item.author_id === currentUser.value?.id;
  const [draft, setDraft] = useState(item.content);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const { busy, error, run } = useAction();
  const deleted = Boolean(item.deleted_at);
  const editor = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    if (props.editing) editor.current?.focus();
  }, [props.editing]);
  const save = () =>
    run(async () => {
      if (draft.trim() && draft !== item.content) await editMessage(item, draft);
      props.setEditing(false);
    });
  return (
    <>
      {replied !== undefined && (
        <p class="reply-quote">
          <span aria-hidden="true">↪ </span>
          <span class="sr-only">Reply to </span>
          <bdi class="author">{displayName(replied.author_id)}</bdi>: <bdi>{replied.content.slice(0, 120)}</bdi>
        </p>
      )}
      <header class="meta">
        <bdi class="author">{displayName(item.author_id)}</bdi>
        <time dateTime={item.created_at} title={longTime(item.created_at)}>
          {shortTime(item.created_at)}
        </time>
        {item.edited_at && !deleted && <span class="muted"> (edited)</span>}
      </header>
      {props.editing ? (
        <div class="edit">
          <textarea
            aria-label="Edit message"
            value={draft}
            maxLength={4000}
            ref={editor}
            onInput={(e) => setDraft((e.currentTarget as HTMLTextAreaElement).value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && !e.shiftKey) {
                e.preventDefault();
                void save();
              } else if (e.key === 'Escape') {
                e.stopPropagation();
                props.setEditing(false);
              }
            }}
          />
          <div class="row-actions visible">
            <button type="button" onClick={() => void save()} disabled={busy}>
              Save
            </button>
            <button type="button" onClick={() => props.setEditing(false)}>
              Cancel
            </button>
          </div>
          {error && (
            <p class="error" role="alert">
              {describeError(error)}
            </p>
          )}
        </div>
      ) : (
        <div class={deleted ? 'content deleted' : 'content'} dir="auto">
          {deleted ? 'Message deleted' : <Linkified text={item.content} />}
        </div>
      )}
      {!deleted && item.attachments.map((a) => <AttachmentView key={a.id} a={a} />)}
      {item.local && (
        <p class={item.local.state === 'failed' ? 'send-state failed' : 'send-state'} role="status">
          {item.local.state === 'sending' ? (
            'Sending…'
          ) : (
            <>
              <span class="error">Not sent: {item.local.error}</span>{' '}
              <button type="button" onClick={() => void retrySend(item.channel_id, item.local!.tempId)}>
                Retry
              </button>{' '}
              <button type="button" onClick={() => discardSend(item.channel_id, item.local!.tempId)}>
                Discard
              </button>
            </>
          )}
        </p>
      )}
      {!item.local && !deleted && !props.editing && (
        <div class="row-actions">
          <button type="button" onClick={() => props.onReply(item)} aria-label="Reply">
            Reply
          </button>
          {mine && (
            <button type="button" onClick={() => props.setEditing(true)} aria-label="Edit message">
              Edit
            </button>
          )}
          {(mine || props.canManage) &&
            (confirmDelete ? (
              <>
                <button type="button" class="danger" onClick={() => void run(() => deleteMessage(item))}>
                  Delete for everyone
                </button>
                <button type="button" onClick={() => setConfirmDelete(false)}>
                  Keep
                </button>
              </>
            ) : (
              <button type="button" onClick={() => setConfirmDelete(true)} aria-label="Delete message">
                Delete
              </button>
            ))}
          {error && (
            <span class="error" role="alert">
              {describeError(error)}
            </span>
          )}
        </div>
      )}
    </>
  );
}

/** A row re-renders only when its own message (or what it replies to) changed. */
class Row extends Component<RowProps, { editing: boolean }> {
  override state = { editing: false };
  override shouldComponentUpdate(next: RowProps, nextState: { editing: boolean }) {
    const p = this.props;
    return (
      next.item !== p.item ||
      next.replied !== p.replied ||
      next.newDivider !== p.newDivider ||
      next.canManage !== p.canManage ||
      nextState.editing !== this.state.editing
    );
  }
  override render() {
    const { item } = this.props;
    return (
      <article
        class={item.local ? 'message pending' : 'message'}
        data-id={item.id}
        ref={(el) => this.props.measure(el, item.id)}
        aria-label={`${displayName(item.author_id)}, ${shortTime(item.created_at)}`}
      >
        {this.props.newDivider && (
          <div class="new-divider">
            <span>New messages</span>
          </div>
        )}
        <MessageBody
          {...this.props}
          editing={this.state.editing}
          setEditing={(editing) => this.setState({ editing })}
        />
      </article>
    );
  }
}

// ---------------------------------------------------------------------------------------------
// The list.

function lowerBound(offsets: Float64Array, value: number): number {
  let lo = 0;
  let hi = offsets.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (offsets[mid + 1]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function MessageList({ channel, onReply }: { channel: Channel; onReply: (m: LogItem) => void }) {
  const log = logOf(channel.id).value;
  const items = log.items;
  const scroller = useRef<HTMLDivElement>(null);
  const heights = useRef(new Map<string, number>());
  const [measured, setMeasured] = useState(0);
  const [view, setView] = useState({ top: 0, height: 800 });
  const stick = useRef(true);
  const anchor = useRef<{ id: string; offset: number } | null>(null);
  const observer = useRef<ResizeObserver | null>(null);
  const elements = useRef(new Map<string, HTMLElement>());
  const canManage = can(channel.guild_id, 'MANAGE_MESSAGES');
  // The divider sits above the first message that arrived after the last one read here.
  const [lastRead] = useState(() => localStorage.getItem(LAST_READ + channel.id));

  useEffect(() => {
    void loadLatest(channel.id);
  }, [channel.id]);

  useEffect(() => {
    const pending = new Set<string>();
    let frame = 0;
    observer.current = new ResizeObserver((entries) => {
      for (const e of entries) {
        const id = (e.target as HTMLElement).dataset.id;
        if (!id) continue;
        const h = Math.round(e.borderBoxSize?.[0]?.blockSize ?? (e.target as HTMLElement).offsetHeight);
        if (h > 0 && heights.current.get(id) !== h) {
          heights.current.set(id, h);
          pending.add(id);
        }
      }
      if (pending.size && !frame)
        frame = requestAnimationFrame(() => {
          frame = 0;
          pending.clear();
          setMeasured((n) => n + 1);
        });
    });
    return () => {
      observer.current?.disconnect();
      cancelAnimationFrame(frame);
    };
  }, []);

  const measure = useMemo(
    () => (el: HTMLElement | null, id: string) => {
      const old = elements.current.get(id);
      if (old === el) return;
      if (old) observer.current?.unobserve(old);
      if (el) {
        elements.current.set(id, el);
        observer.current?.observe(el);
      } else elements.current.delete(id);
    },
    [],
  );

  const offsets = useMemo(() => {
    const o = new Float64Array(items.length + 1);
    for (let i = 0; i < items.length; i++) o[i + 1] = o[i]! + (heights.current.get(items[i]!.id) ?? ESTIMATE);
    return o;
  }, [items, measured]);
  const total = offsets[items.length]!;
  const start = Math.max(0, lowerBound(offsets, view.top - OVERSCAN));
  const end = Math.min(items.length, lowerBound(offsets, view.top + view.height + OVERSCAN) + 1);

  // Keep the view where the reader left it: at the bottom when following, else on the same message.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    if (stick.current) el.scrollTop = el.scrollHeight;
    else if (anchor.current) {
      const i = items.findIndex((m) => m.id === anchor.current!.id);
      if (i >= 0) el.scrollTop = offsets[i]! + anchor.current.offset;
    }
  }, [offsets]);

  // Leaving the channel (or new messages while here) moves the read marker.
  useEffect(() => {
    const real = items.filter((i) => !i.local);
    const newest = real[real.length - 1];
    if (newest && !document.hidden) localStorage.setItem(LAST_READ + channel.id, newest.id);
    if (unread.value[channel.id]) unread.value = { ...unread.value, [channel.id]: 0 };
  }, [items, channel.id]);

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    stick.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
    const i = Math.min(items.length - 1, lowerBound(offsets, el.scrollTop));
    anchor.current = i >= 0 && items[i] ? { id: items[i]!.id, offset: el.scrollTop - offsets[i]! } : null;
    // Re-render only when the window moved by a real step (the overscan covers the rest).
    if (Math.abs(el.scrollTop - view.top) > 120 || el.clientHeight !== view.height)
      setView({ top: el.scrollTop, height: el.clientHeight });
    if (el.scrollTop < 400 && !log.atStart && !log.loading) void loadOlder(channel.id);
  };

  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const ro = new ResizeObserver(() => onScroll());
    ro.observe(el);
    return () => ro.disconnect();
  });

  const byId = useMemo(() => {
    const m = new Map<string, LogItem>();
    for (const i of items) m.set(i.id, i);
    return m;
  }, [items]);
  const dividerId = useMemo(() => {
    if (!lastRead) return null;
    const me = currentUser.value?.id;
    return items.find((i) => !i.local && i.id > lastRead && i.author_id !== me)?.id ?? null;
  }, [items, lastRead]);

  const rows = [];
  for (let i = start; i < end; i++) {
    const item = items[i]!;
    rows.push(
      <Row
        key={item.id}
        item={item}
        replied={item.reply_to ? (byId.get(item.reply_to) ?? undefined) : undefined}
        newDivider={item.id === dividerId}
        canManage={canManage}
        onReply={onReply}
        measure={measure}
      />,
    );
  }
  return (
    <div
      class="messages"
      ref={scroller}
      onScroll={onScroll}
      // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be reachable by keyboard (WCAG 2.1.1)
      tabIndex={0}
      role="log"
      aria-label={`Messages in ${channel.name ?? 'channel'}`}
      aria-busy={log.loading}
    >
      <div class="messages-inner" style={{ height: `${total}px` }}>
        <div class="messages-window" style={{ transform: `translateY(${offsets[start]}px)` }}>
          {start === 0 && log.atStart && <p class="channel-start">This is the beginning of #{channel.name}.</p>}
          {rows}
        </div>
      </div>
      {log.error && (
        <p class="error" role="alert">
          {log.error}
        </p>
      )}
      {!log.loaded && log.loading && <p class="muted loading">Loading messages…</p>}
    </div>
  );
}

// ---------------------------------------------------------------------------------------------
// Typing and the composer.

export function TypingLine({ channelId }: { channelId: string }) {
  const who = Object.keys(typing.value[channelId] ?? {});
  const text =
    who.length === 0
      ? ''
      : who.length === 1
        ? `${displayName(who[0]!)} is typing…`
        : who.length < 4
          ? `${who.map(displayName).join(', ')} are typing…`
          : 'Several people are typing…';
  return (
    <p class="typing" aria-live="polite">
      {text}
    </p>
  );
}

interface Upload {
  key: number;
  file: File;
  progress: number;
  attachment?: Attachment;
  error?: string;
}

let uploadKey = 0;

export function Composer(props: {
  channel: Channel;
  replyTo: LogItem | null;
  clearReply: () => void;
  droppedFiles: File[] | null;
  clearDropped: () => void;
}) {
  const { channel } = props;
  const [text, setText] = useState('');
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [error, setError] = useState<string | null>(null);
  const lastTyping = useRef(0);
  const fileInput = useRef<HTMLInputElement>(null);
  const area = useRef<HTMLTextAreaElement>(null);

  const patchUpload = (key: number, patch: Partial<Upload>) =>
    setUploads((list) => list.map((u) => (u.key === key ? { ...u, ...patch } : u)));

  const inflight = useRef(new Map<number, Promise<Attachment | null>>());
  const addFiles = (files: File[]) => {
    for (const file of files) {
      const key = uploadKey++;
      setUploads((list) => [...list, { key, file, progress: 0 }]);
      const done = uploadFile<Attachment>(`/api/channels/${channel.id}/attachments`, file, (p) =>
        patchUpload(key, { progress: p }),
      ).then(
        (attachment) => {
          patchUpload(key, { attachment, progress: 1 });
          return attachment;
        },
        (e) => {
          patchUpload(key, { error: describeError(e) });
          return null;
        },
      );
      inflight.current.set(key, done);
    }
  };

  useEffect(() => {
    if (props.droppedFiles?.length) {
      addFiles(props.droppedFiles);
      props.clearDropped();
    }
  }, [props.droppedFiles]);

  useEffect(() => {
    if (props.replyTo) area.current?.focus();
  }, [props.replyTo]);

  const [waiting, setWaiting] = useState(false);
  const send = async () => {
    setError(null);
    if (waiting) return;
    if (!text.trim() && uploads.every((u) => u.error)) return;
    if ([...text].length > 4000) {
      setError('A message can be at most 4000 characters.');
      return;
    }
    // Uploads still running: the message goes as soon as they are stored.
    setWaiting(true);
    const attachments = (await Promise.all(uploads.map((u) => inflight.current.get(u.key)))).filter(
      (a): a is Attachment => Boolean(a),
    );
    setWaiting(false);
    const content = text.trim() ? text : attachments.map((a) => a.filename).join(', ');
    if (!content.trim()) return;
    sendMessage(
      channel.id,
      content,
      props.replyTo?.id ?? null,
      attachments.map((a) => a.id),
    );
    setText('');
    setUploads((list) => list.filter((u) => !attachments.some((a) => a.id === u.attachment?.id) && !u.error));
    props.clearReply();
  };

  const onInput = (value: string) => {
    setText(value);
    const now = Date.now();
    if (value && now - lastTyping.current > 8_000) {
      lastTyping.current = now;
      void gateway.send('typing', { channel_id: channel.id }).catch(() => {});
    }
  };

  const canAttach = can(channel.guild_id, 'ATTACH_FILES');
  return (
    <div class="composer">
      {props.replyTo && (
        <p class="replying">
          Replying to <bdi>{displayName(props.replyTo.author_id)}</bdi>{' '}
          <button type="button" class="link" onClick={props.clearReply}>
            Cancel reply
          </button>
        </p>
      )}
      {uploads.length > 0 && (
        <ul class="uploads" aria-label="Attachments">
          {uploads.map((u) => (
            <li key={u.key}>
              <bdi class="filename">{u.file.name}</bdi>{' '}
              {u.error ? (
                <span class="error" role="alert">
                  {u.error}
                </span>
              ) : (
                <progress max={1} value={u.progress} aria-label={`Uploading ${u.file.name}`} />
              )}
              <button
                type="button"
                class="icon"
                aria-label={`Remove ${u.file.name}`}
                onClick={() => setUploads((l) => l.filter((x) => x.key !== u.key))}
              >
                ✕
              </button>
            </li>
          ))}
        </ul>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <form
        class="composer-row"
        onSubmit={(e) => {
          e.preventDefault();
          void send();
        }}
      >
        {canAttach && (
          <>
            <button
              type="button"
              class="icon attach"
              aria-label="Attach files"
              onClick={() => fileInput.current?.click()}
            >
              +
            </button>
            <input
              ref={fileInput}
              type="file"
              multiple
              hidden
              aria-hidden="true"
              tabIndex={-1}
              onChange={(e) => {
                const input = e.currentTarget as HTMLInputElement;
                addFiles([...(input.files ?? [])]);
                input.value = '';
              }}
            />
          </>
        )}
        <textarea
          ref={area}
          rows={1}
          value={text}
          maxLength={4000}
          placeholder={`Message #${channel.name ?? ''}`}
          aria-label={`Message #${channel.name ?? ''}`}
          onInput={(e) => onInput((e.currentTarget as HTMLTextAreaElement).value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
              e.preventDefault();
              void send();
            } else if (e.key === 'Escape' && props.replyTo) props.clearReply();
          }}
          onPaste={(e) => {
            const files = [...(e.clipboardData?.files ?? [])];
            if (files.length && canAttach) {
              e.preventDefault();
              addFiles(files);
            }
          }}
        />
        <button type="submit" class="primary send" disabled={waiting}>
          {waiting ? 'Uploading…' : 'Send'}
        </button>
      </form>
    </div>
  );
}
