/**
 * Guild administration: channels (create, edit, delete), invites (create, copy, revoke), roles
 * (name, colour, permissions, position), members (roles, kick, ban), leaving and deleting a guild.
 * Controls appear only with the matching permission; the server's answer is always shown.
 */
import { useEffect, useState } from 'preact/hooks';
import { api } from '../lib/api';
import { bit, EVERYONE_FORBIDDEN, guildPermissions, has, type PermissionName, topPosition } from '../lib/permissions';
import { navigate } from '../lib/router';
import { currentUser } from '../lib/session';
import type { Channel, Invite, Role } from '../lib/types';
import {
  can,
  type GuildView,
  guilds,
  removeChannel,
  removeMember,
  upsertChannel,
  upsertMember,
  upsertRole,
} from '../state/store';
import { ActionButton, Dialog, ErrorNote, Field, useAction } from './common';

export function CreateChannel(props: { guildId: string; type: 'text' | 'voice'; onClose: () => void }) {
  const [name, setName] = useState('');
  const { busy, error, run } = useAction();
  return (
    <Dialog title={`Create a ${props.type} channel`} onClose={props.onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void run(async () => {
            const c = await api<Channel>('POST', `/api/guilds/${props.guildId}/channels`, {
              body: { name: name.trim(), type: props.type },
            });
            upsertChannel(c);
            props.onClose();
            if (c.type === 'text') navigate(`/channels/${props.guildId}/${c.id}`);
          });
        }}
      >
        <Field label="Channel name" value={name} onInput={setName} required autoFocus maxLength={100} />
        <ErrorNote error={error} />
        <button type="submit" class="primary" disabled={busy}>
          Create channel
        </button>
      </form>
    </Dialog>
  );
}

/** `/channels/<guild>/<channel>/settings`: edit or delete a channel (the server decides who may). */
export function ChannelSettings(props: { view: GuildView; channelId: string; onClose: () => void }) {
  const channel = props.view.channels.find((c) => c.id === props.channelId);
  const [name, setName] = useState(channel?.name ?? '');
  const [topic, setTopic] = useState(channel?.topic ?? '');
  const [position, setPosition] = useState(String(channel?.position ?? 0));
  const [limit, setLimit] = useState(String(channel?.user_limit ?? 0));
  const [confirm, setConfirm] = useState(false);
  const { busy, error, run } = useAction();
  if (!channel)
    return (
      <Dialog title="Channel settings" onClose={props.onClose}>
        <p>This channel does not exist or you cannot see it.</p>
      </Dialog>
    );
  return (
    <Dialog title={`Edit #${channel.name}`} onClose={props.onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void run(async () => {
            const body: Record<string, unknown> = {
              name: name.trim(),
              topic: topic.trim() || null,
              position: Number(position),
            };
            if (channel.type === 'voice') body.user_limit = Number(limit);
            upsertChannel(await api<Channel>('PATCH', `/api/channels/${channel.id}`, { body }));
            props.onClose();
          });
        }}
      >
        <Field label="Name" value={name} onInput={setName} required maxLength={100} />
        {channel.type === 'text' && <Field label="Topic" value={topic} onInput={setTopic} maxLength={1024} />}
        <Field label="Position" type="number" value={position} onInput={setPosition} inputMode="numeric" />
        {channel.type === 'voice' && (
          <Field label="User limit (0 = none)" type="number" value={limit} onInput={setLimit} inputMode="numeric" />
        )}
        <ErrorNote error={error} />
        <div class="buttons">
          <button type="submit" class="primary" disabled={busy}>
            Save
          </button>
          {confirm ? (
            <button
              type="button"
              class="danger"
              onClick={() =>
                void run(async () => {
                  await api('DELETE', `/api/channels/${channel.id}`);
                  removeChannel(props.view.guild.id, channel.id);
                  navigate(`/channels/${props.view.guild.id}`, true);
                })
              }
            >
              Really delete #{channel.name}
            </button>
          ) : (
            <button type="button" class="danger" onClick={() => setConfirm(true)}>
              Delete channel
            </button>
          )}
        </div>
      </form>
    </Dialog>
  );
}

function InvitesDialog({ view, onClose }: { view: GuildView; onClose: () => void }) {
  const [invites, setInvites] = useState<Invite[] | null>(null);
  const [maxUses, setMaxUses] = useState('');
  const [expires, setExpires] = useState('86400');
  const [copied, setCopied] = useState<string | null>(null);
  const { busy, error, run } = useAction();
  const base = `${location.origin}/invite/`;
  useEffect(() => {
    void run(async () => setInvites(await api<Invite[]>('GET', `/api/guilds/${view.guild.id}/invites`)));
  }, []);
  const copy = async (code: string) => {
    try {
      await navigator.clipboard.writeText(base + code);
      setCopied(code);
    } catch {
      setCopied(null);
    }
  };
  return (
    <Dialog title={`Invite people to ${view.guild.name}`} onClose={onClose} wide>
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void run(async () => {
            const body: Record<string, number> = {};
            if (maxUses) body.max_uses = Number(maxUses);
            if (expires) body.expires_in = Number(expires);
            const inv = await api<Invite>('POST', `/api/guilds/${view.guild.id}/invites`, { body });
            setInvites((l) => [inv, ...(l ?? [])]);
          });
        }}
      >
        <div class="field">
          <label for="invite-expiry">Expires after</label>
          <select
            id="invite-expiry"
            value={expires}
            onChange={(e) => setExpires((e.currentTarget as HTMLSelectElement).value)}
          >
            <option value="3600">1 hour</option>
            <option value="86400">1 day</option>
            <option value="604800">7 days</option>
            <option value="2592000">30 days</option>
            <option value="">never</option>
          </select>
        </div>
        <Field
          label="Max uses (empty = unlimited)"
          type="number"
          value={maxUses}
          onInput={setMaxUses}
          inputMode="numeric"
        />
        <button type="submit" class="primary" disabled={busy}>
          Create invite link
        </button>
      </form>
      <ErrorNote error={error} />
      <ul class="invite-list" aria-label="Invites">
        {(invites ?? []).map((i) => (
          <li key={i.code}>
            <input
              class="invite-link"
              readOnly
              value={base + i.code}
              aria-label="Invite link"
              onFocus={(e) => (e.currentTarget as HTMLInputElement).select()}
            />
            <span class="muted">
              {i.uses}
              {i.max_uses ? `/${i.max_uses}` : ''} uses
              {i.expires_at ? `, expires ${new Date(i.expires_at).toLocaleString()}` : ''}
            </span>
            <button type="button" onClick={() => void copy(i.code)}>
              {copied === i.code ? 'Copied' : 'Copy link'}
            </button>
            <button
              type="button"
              class="danger"
              onClick={() =>
                void run(async () => {
                  await api('DELETE', `/api/guilds/${view.guild.id}/invites/${encodeURIComponent(i.code)}`);
                  setInvites((l) => (l ?? []).filter((x) => x.code !== i.code));
                })
              }
            >
              Revoke
            </button>
          </li>
        ))}
      </ul>
    </Dialog>
  );
}

const PERMISSION_LABELS: [PermissionName, string][] = [
  ['VIEW_CHANNEL', 'View channels'],
  ['SEND_MESSAGES', 'Send messages'],
  ['ATTACH_FILES', 'Attach files'],
  ['CREATE_INVITE', 'Create invites'],
  ['VOICE_CONNECT', 'Connect to voice'],
  ['VOICE_SPEAK', 'Speak in voice'],
  ['VOICE_MUTE_OTHERS', 'Mute others in voice'],
  ['VOICE_DEAFEN_OTHERS', 'Deafen others in voice'],
  ['VOICE_MOVE_MEMBERS', 'Move members in voice'],
  ['MANAGE_MESSAGES', 'Manage messages'],
  ['MANAGE_CHANNELS', 'Manage channels'],
  ['MANAGE_ROLES', 'Manage roles'],
  ['KICK_MEMBERS', 'Kick members'],
  ['BAN_MEMBERS', 'Ban members'],
  ['VIEW_AUDIT_LOG', 'View audit log'],
  ['MANAGE_GUILD', 'Manage guild'],
  ['ADMINISTRATOR', 'Administrator (all rights)'],
];

function RoleEditor({ view, role, onDone }: { view: GuildView; role: Role | null; onDone: () => void }) {
  const [name, setName] = useState(role?.name ?? '');
  const [color, setColor] = useState(role?.color ?? '#5865f2');
  const [useColor, setUseColor] = useState(Boolean(role?.color) || !role);
  const [perms, setPerms] = useState(BigInt(role?.permissions ?? '0'));
  const [position, setPosition] = useState(String(role?.position ?? 1));
  const { busy, error, run } = useAction();
  const everyone = role?.is_everyone ?? false;
  return (
    <form
      class="role-editor"
      aria-label={role ? `Edit role ${role.name}` : 'New role'}
      onSubmit={(e) => {
        e.preventDefault();
        void run(async () => {
          const body: Record<string, unknown> = { permissions: perms.toString(), color: useColor ? color : null };
          if (!everyone) {
            body.name = name.trim();
            body.position = Number(position);
          }
          const saved = role
            ? await api<Role>('PATCH', `/api/guilds/${view.guild.id}/roles/${role.id}`, { body })
            : await api<Role>('POST', `/api/guilds/${view.guild.id}/roles`, { body });
          upsertRole(saved);
          onDone();
        });
      }}
    >
      {!everyone && <Field label="Role name" value={name} onInput={setName} required maxLength={100} />}
      <div class="field inline">
        <input
          id="role-use-color"
          type="checkbox"
          checked={useColor}
          onChange={(e) => setUseColor((e.currentTarget as HTMLInputElement).checked)}
        />
        <label for="role-use-color">Colour</label>
        <input
          type="color"
          aria-label="Role colour"
          value={color}
          disabled={!useColor}
          onInput={(e) => setColor((e.currentTarget as HTMLInputElement).value)}
        />
      </div>
      {!everyone && <Field label="Position (higher is above)" type="number" value={position} onInput={setPosition} />}
      <fieldset class="permissions">
        <legend>Permissions</legend>
        {PERMISSION_LABELS.map(([key, label]) => {
          const id = `perm-${key}`;
          const forbidden = everyone && EVERYONE_FORBIDDEN.includes(key);
          return (
            <div class="field inline" key={key}>
              <input
                id={id}
                type="checkbox"
                checked={(perms & bit(key)) !== 0n}
                disabled={forbidden}
                onChange={(e) =>
                  setPerms((p) => ((e.currentTarget as HTMLInputElement).checked ? p | bit(key) : p & ~bit(key)))
                }
              />
              <label for={id}>
                {label}
                {forbidden && <span class="muted"> (never for @everyone)</span>}
              </label>
            </div>
          );
        })}
      </fieldset>
      <ErrorNote error={error} />
      <div class="buttons">
        <button type="submit" class="primary" disabled={busy}>
          {role ? 'Save role' : 'Create role'}
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
        {role && !everyone && (
          <button
            type="button"
            class="danger"
            onClick={() =>
              void run(async () => {
                await api('DELETE', `/api/guilds/${view.guild.id}/roles/${role.id}`);
                onDone();
              })
            }
          >
            Delete role
          </button>
        )}
      </div>
    </form>
  );
}

function RolesDialog({ view, onClose }: { view: GuildView; onClose: () => void }) {
  const [editing, setEditing] = useState<Role | 'new' | null>(null);
  const live = guilds.value[view.guild.id] ?? view;
  return (
    <Dialog title="Roles" onClose={onClose} wide>
      {editing ? (
        <RoleEditor view={live} role={editing === 'new' ? null : editing} onDone={() => setEditing(null)} />
      ) : (
        <>
          <ul class="role-list">
            {live.roles.map((r) => (
              <li key={r.id}>
                <span class="swatch" style={r.color ? { background: r.color } : undefined} aria-hidden="true" />
                <bdi>{r.name}</bdi> <span class="muted">position {r.position}</span>
                <button type="button" onClick={() => setEditing(r)} aria-label={`Edit role ${r.name}`}>
                  Edit
                </button>
              </li>
            ))}
          </ul>
          <button type="button" class="primary" onClick={() => setEditing('new')}>
            New role
          </button>
        </>
      )}
    </Dialog>
  );
}

function RenameGuild({ view, onClose }: { view: GuildView; onClose: () => void }) {
  const [name, setName] = useState(view.guild.name);
  const { busy, error, run } = useAction();
  return (
    <Dialog title="Guild settings" onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void run(async () => {
            await api('PATCH', `/api/guilds/${view.guild.id}`, { body: { name: name.trim() } });
            onClose();
          });
        }}
      >
        <Field label="Guild name" value={name} onInput={setName} required maxLength={100} />
        <ErrorNote error={error} />
        <button type="submit" class="primary" disabled={busy}>
          Save
        </button>
      </form>
    </Dialog>
  );
}

export function GuildMenu({ view }: { view: GuildView }) {
  const [open, setOpen] = useState<'invites' | 'roles' | 'guild' | 'leave' | null>(null);
  const [confirmLeave, setConfirmLeave] = useState(false);
  const { error, run } = useAction();
  const me = currentUser.value?.id;
  const owner = view.guild.owner_id === me;
  const guildId = view.guild.id;
  return (
    <header class="guild-head">
      <h2>
        <bdi>{view.guild.name}</bdi>
      </h2>
      <div class="guild-actions">
        {can(guildId, 'CREATE_INVITE') && (
          <button type="button" onClick={() => setOpen('invites')}>
            Invite
          </button>
        )}
        {can(guildId, 'MANAGE_ROLES') && (
          <button type="button" onClick={() => setOpen('roles')}>
            Roles
          </button>
        )}
        {can(guildId, 'MANAGE_GUILD') && (
          <button type="button" onClick={() => setOpen('guild')}>
            Settings
          </button>
        )}
        {confirmLeave ? (
          <button
            type="button"
            class="danger"
            onClick={() =>
              void run(async () => {
                if (owner) await api('DELETE', `/api/guilds/${guildId}`);
                else await api('POST', `/api/guilds/${guildId}/leave`);
                removeMember(guildId, me!);
                navigate('/', true);
              })
            }
          >
            {owner ? 'Really delete guild' : 'Really leave'}
          </button>
        ) : (
          <button type="button" class="danger" onClick={() => setConfirmLeave(true)}>
            {owner ? 'Delete guild' : 'Leave'}
          </button>
        )}
      </div>
      <ErrorNote error={error} />
      {open === 'invites' && <InvitesDialog view={view} onClose={() => setOpen(null)} />}
      {open === 'roles' && <RolesDialog view={view} onClose={() => setOpen(null)} />}
      {open === 'guild' && <RenameGuild view={view} onClose={() => setOpen(null)} />}
    </header>
  );
}

export function MemberDialog({ view, userId, onClose }: { view: GuildView; userId: string; onClose: () => void }) {
  const live = guilds.value[view.guild.id] ?? view;
  const member = live.members?.find((m) => m.user.id === userId);
  const me = currentUser.value!;
  const myMember = live.members?.find((m) => m.user.id === me.id);
  const myPerms = guildPermissions(live.guild, live.roles, me.id, myMember);
  const myTop = topPosition(live.guild, live.roles, me.id, myMember);
  const theirTop = topPosition(live.guild, live.roles, userId, member);
  const [reason, setReason] = useState('');
  const [pendingRoles, setPendingRoles] = useState<Record<string, boolean>>({});
  const action = useAction();
  const { busy, error, run } = action;
  if (!member)
    return (
      <Dialog title="Member" onClose={onClose}>
        <p>This member has left.</p>
      </Dialog>
    );
  const outranks = userId !== me.id && live.guild.owner_id !== userId && myTop > theirTop;
  const manageRoles = has(myPerms, 'MANAGE_ROLES');
  const assignable = live.roles.filter(
    (r) => !r.is_everyone && (myTop === Number.POSITIVE_INFINITY || r.position < myTop),
  );
  // The box shows the click at once; the server's answer confirms it (or the box goes back, with the error).
  const toggleRole = (role: Role, on: boolean) =>
    run(async () => {
      setPendingRoles((p) => ({ ...p, [role.id]: on }));
      try {
        await api(on ? 'PUT' : 'DELETE', `/api/guilds/${live.guild.id}/members/${userId}/roles/${role.id}`);
      } finally {
        setPendingRoles(({ [role.id]: _, ...rest }) => rest);
      }
      upsertMember({ ...member, roles: on ? [...member.roles, role.id] : member.roles.filter((r) => r !== role.id) });
    });
  return (
    <Dialog title={member.user.display_name || member.user.username} onClose={onClose}>
      <p>
        @<bdi>{member.user.username}</bdi>
        {live.guild.owner_id === userId && <span class="tag">owner</span>}
      </p>
      {manageRoles && assignable.length > 0 && (
        <fieldset class="permissions">
          <legend>Roles</legend>
          {assignable.map((r) => (
            <div class="field inline" key={r.id}>
              <input
                id={`member-role-${r.id}`}
                type="checkbox"
                checked={pendingRoles[r.id] ?? member.roles.includes(r.id)}
                disabled={busy}
                onChange={(e) => void toggleRole(r, (e.currentTarget as HTMLInputElement).checked)}
              />
              <label for={`member-role-${r.id}`}>
                <span class="swatch" style={r.color ? { background: r.color } : undefined} aria-hidden="true" />
                <bdi>{r.name}</bdi>
              </label>
            </div>
          ))}
        </fieldset>
      )}
      {outranks && (has(myPerms, 'KICK_MEMBERS') || has(myPerms, 'BAN_MEMBERS')) && (
        <div class="moderation">
          {has(myPerms, 'BAN_MEMBERS') && (
            <Field label="Ban reason (optional)" value={reason} onInput={setReason} maxLength={512} />
          )}
          <div class="buttons">
            {has(myPerms, 'KICK_MEMBERS') && (
              <ActionButton
                danger
                action={action}
                onAct={async () => {
                  await api('DELETE', `/api/guilds/${live.guild.id}/members/${userId}`);
                  removeMember(live.guild.id, userId);
                  onClose();
                }}
              >
                Kick
              </ActionButton>
            )}
            {has(myPerms, 'BAN_MEMBERS') && (
              <ActionButton
                danger
                action={action}
                onAct={async () => {
                  await api('PUT', `/api/guilds/${live.guild.id}/bans/${userId}`, {
                    body: reason.trim() ? { reason: reason.trim() } : {},
                  });
                  removeMember(live.guild.id, userId);
                  onClose();
                }}
              >
                Ban
              </ActionButton>
            )}
          </div>
        </div>
      )}
      <ErrorNote error={error} />
    </Dialog>
  );
}
