/** Sign-in (with a TOTP or backup code step), registration, invite landing and password reset. */
import { useState } from 'preact/hooks';
import { ApiError, api } from '../lib/api';
import { linkClick, navigate } from '../lib/router';
import { acceptTokens, signOutReason } from '../lib/session';
import type { Guild, TokenAnswer } from '../lib/types';
import { addGuild } from '../state/store';
import { ErrorNote, Field, PasswordField, useAction } from './common';

const nextParam = () => new URLSearchParams(location.search).get('next');
const safeNext = (n: string | null) => (n?.startsWith('/') && !n.startsWith('//') ? n : '/');

function AuthFrame(props: { title: string; children: preact.ComponentChildren }) {
  return (
    <main class="auth" id="main">
      <div class="auth-card">
        <p class="brand" aria-hidden="true">
          VoiceChat
        </p>
        <h1>{props.title}</h1>
        {props.children}
      </div>
    </main>
  );
}

export function SignIn() {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [needCode, setNeedCode] = useState(false);
  const { busy, error, setError, run } = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      try {
        const body: Record<string, string> = { username: username.trim(), password };
        if (needCode) body.mfa_code = code.trim();
        const t = await api<TokenAnswer>('POST', '/auth/login', { body, auth: false });
        acceptTokens(t);
        navigate(safeNext(nextParam()), true);
      } catch (err) {
        if (err instanceof ApiError && err.code === 'MFA_REQUIRED') {
          setNeedCode(true);
          setError(null);
          return;
        }
        throw err;
      }
    });
  };
  const next = nextParam();
  return (
    <AuthFrame title={needCode ? 'Two-factor code' : 'Sign in'}>
      {signOutReason.value && (
        <p class="notice" role="status">
          {signOutReason.value}
        </p>
      )}
      <form onSubmit={submit} aria-label="Sign in">
        {!needCode && (
          <>
            <Field
              label="Username"
              name="username"
              value={username}
              onInput={setUsername}
              autoComplete="username"
              required
              autoFocus
            />
            <PasswordField name="password" value={password} onInput={setPassword} />
          </>
        )}
        {needCode && (
          <Field
            label="Code from your authenticator app, or a backup code"
            name="mfa_code"
            value={code}
            onInput={setCode}
            autoComplete="one-time-code"
            required
            autoFocus
          />
        )}
        <ErrorNote error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : needCode ? 'Verify' : 'Sign in'}
        </button>
        {needCode && (
          <button
            type="button"
            class="link"
            onClick={() => {
              setNeedCode(false);
              setCode('');
            }}
          >
            Back
          </button>
        )}
      </form>
      <p>
        New here?{' '}
        <a href={`/register${next ? `?next=${encodeURIComponent(next)}` : ''}`} onClick={linkClick}>
          Create an account
        </a>
      </p>
    </AuthFrame>
  );
}

export function Register({ inviteCode }: { inviteCode?: string }) {
  const [username, setUsername] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [invite, setInvite] = useState(inviteCode ?? '');
  const { busy, error, run } = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      const body: Record<string, string> = { username: username.trim(), password };
      if (displayName.trim()) body.display_name = displayName.trim();
      if (email.trim()) body.email = email.trim();
      if (invite.trim()) body.invite_code = invite.trim();
      const t = await api<TokenAnswer>('POST', '/auth/register', { body, auth: false });
      acceptTokens(t);
      if (!invite.trim()) {
        navigate(safeNext(nextParam()), true);
        return;
      }
      // Registering with an invite made us a member; joining again is a no-op that names the guild.
      try {
        const guild = await api<Guild>('POST', `/api/invites/${encodeURIComponent(invite.trim())}/join`);
        addGuild(guild);
        navigate(`/channels/${guild.id}`, true);
      } catch {
        navigate('/', true);
      }
    });
  };
  return (
    <AuthFrame title={inviteCode ? 'You are invited' : 'Create an account'}>
      <form onSubmit={submit} aria-label="Create an account">
        <Field
          label="Username"
          name="username"
          value={username}
          onInput={setUsername}
          autoComplete="username"
          hint="3–32 characters: lowercase letters, digits and _"
          required
          autoFocus
        />
        <Field label="Display name (optional)" name="display_name" value={displayName} onInput={setDisplayName} />
        <Field
          label="Email (optional)"
          name="email"
          type="email"
          value={email}
          onInput={setEmail}
          autoComplete="email"
        />
        <PasswordField isNew name="password" value={password} onInput={setPassword} />
        <Field
          label={inviteCode ? 'Invite code' : 'Invite code (if this server needs one)'}
          name="invite_code"
          value={invite}
          onInput={setInvite}
        />
        <ErrorNote error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create account'}
        </button>
      </form>
      <p>
        Already have an account?{' '}
        <a
          href={`/login?next=${encodeURIComponent(inviteCode ? `/invite/${inviteCode}` : safeNext(nextParam()))}`}
          onClick={linkClick}
        >
          Sign in
        </a>
      </p>
    </AuthFrame>
  );
}

/** `/invite/<code>` for someone signed in: join, then open the guild. */
export function InviteJoin({ code }: { code: string }) {
  const { busy, error, run } = useAction();
  const join = () =>
    run(async () => {
      const guild = await api<Guild>('POST', `/api/invites/${encodeURIComponent(code)}/join`);
      addGuild(guild);
      navigate(`/channels/${guild.id}`, true);
    });
  return (
    <AuthFrame title="Join a guild">
      <p>
        You were invited with the code <code>{code}</code>.
      </p>
      <ErrorNote error={error} />
      <button type="button" class="primary" disabled={busy} onClick={() => void join()}>
        {busy ? 'Joining…' : 'Accept invite'}
      </button>
      <p>
        <a href="/" onClick={linkClick}>
          Not now
        </a>
      </p>
    </AuthFrame>
  );
}

/** `/reset-password#token=…` (the link the server mails, or the admin's token). */
export function ResetPassword() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token') ?? '';
  const [token, setToken] = useState(fromHash);
  const [password, setPassword] = useState('');
  const [done, setDone] = useState(false);
  const { busy, error, run } = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      await api('POST', '/auth/reset-password', { body: { token: token.trim(), new_password: password }, auth: false });
      history.replaceState(null, '', '/reset-password');
      setDone(true);
    });
  };
  return (
    <AuthFrame title="Choose a new password">
      {done ? (
        <p role="status">
          Your password was changed and every session was signed out.{' '}
          <a href="/login" onClick={linkClick}>
            Sign in
          </a>
        </p>
      ) : (
        <form onSubmit={submit} aria-label="Reset password">
          {!fromHash && <Field label="Reset token" value={token} onInput={setToken} required />}
          <PasswordField isNew label="New password" value={password} onInput={setPassword} autoFocus />
          <ErrorNote error={error} />
          <button type="submit" class="primary" disabled={busy}>
            Set password
          </button>
        </form>
      )}
    </AuthFrame>
  );
}
