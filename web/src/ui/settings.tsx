/** Account security: profile, password, two-factor (QR enrolment, backup codes shown once), sessions. */
import { useEffect, useState } from 'preact/hooks';
import { api } from '../lib/api';
import { linkClick } from '../lib/router';
import { currentUser, signOut, signOutLocally } from '../lib/session';
import { longTime } from '../lib/text';
import type { SessionInfo, User } from '../lib/types';
import { ActionButton, ErrorNote, Field, PasswordField, useAction } from './common';
import { EncryptionDevices } from './e2ee';
import { QrCode } from './qr';

function Profile() {
  const me = currentUser.value!;
  const [name, setName] = useState(me.display_name ?? '');
  const [saved, setSaved] = useState(false);
  const { busy, error, run } = useAction();
  return (
    <section aria-labelledby="profile-h">
      <h2 id="profile-h">Profile</h2>
      <p>
        Username: <bdi>{me.username}</bdi>
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setSaved(false);
          void run(async () => {
            currentUser.value = await api<User>('PATCH', '/auth/me', { body: { display_name: name.trim() || null } });
            setSaved(true);
          });
        }}
      >
        <Field label="Display name" value={name} onInput={setName} maxLength={64} />
        <ErrorNote error={error} />
        {saved && <p role="status">Saved.</p>}
        <button type="submit" disabled={busy}>
          Save profile
        </button>
      </form>
    </section>
  );
}

function ChangePassword() {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [done, setDone] = useState(false);
  const { busy, error, run } = useAction();
  return (
    <section aria-labelledby="password-h">
      <h2 id="password-h">Password</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setDone(false);
          void run(async () => {
            await api('POST', '/auth/me/password', { body: { current_password: current, new_password: next } });
            setCurrent('');
            setNext('');
            setDone(true);
          });
        }}
      >
        <PasswordField label="Current password" value={current} onInput={setCurrent} />
        <PasswordField isNew label="New password" value={next} onInput={setNext} />
        <ErrorNote error={error} />
        {done && <p role="status">Password changed. Every other session was signed out.</p>}
        <button type="submit" disabled={busy}>
          Change password
        </button>
      </form>
    </section>
  );
}

const CodeField = (props: { value: string; onInput: (v: string) => void; autoFocus?: boolean }) => (
  <Field label="Code from the app" inputMode="numeric" autoComplete="one-time-code" required {...props} />
);

function BackupCodes({ codes, onDone }: { codes: string[]; onDone: () => void }) {
  return (
    <div class="backup-codes">
      <p>
        <strong>Save these backup codes now.</strong> Each works once instead of a code from your app. They are shown
        only this time.
      </p>
      <ol aria-label="Backup codes">
        {codes.map((c) => (
          <li key={c}>
            <code>{c}</code>
          </li>
        ))}
      </ol>
      <div class="buttons">
        <button type="button" onClick={() => void navigator.clipboard?.writeText(codes.join('\n')).catch(() => {})}>
          Copy codes
        </button>
        <button type="button" class="primary" onClick={onDone}>
          I have saved them
        </button>
      </div>
    </div>
  );
}

function TwoFactor() {
  const me = currentUser.value!;
  const [step, setStep] = useState<'idle' | 'password' | 'scan' | 'codes' | 'disable' | 'regenerate'>('idle');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [setup, setSetup] = useState<{ secret: string; otpauth_uri: string } | null>(null);
  const [codes, setCodes] = useState<string[]>([]);
  const { busy, error, run } = useAction();
  const reset = () => {
    setPassword('');
    setCode('');
    setSetup(null);
    setStep('idle');
  };
  const enabled = Boolean(me.mfa_enabled);
  return (
    <section aria-labelledby="mfa-h">
      <h2 id="mfa-h">Two-factor authentication</h2>
      <p>
        Status: <strong>{enabled ? 'on' : 'off'}</strong>
      </p>
      {step === 'idle' && !enabled && (
        <button type="button" onClick={() => setStep('password')}>
          Set up two-factor
        </button>
      )}
      {step === 'idle' && enabled && (
        <div class="buttons">
          <button type="button" onClick={() => setStep('regenerate')}>
            New backup codes
          </button>
          <button type="button" class="danger" onClick={() => setStep('disable')}>
            Turn off two-factor
          </button>
        </div>
      )}
      {step === 'password' && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void run(async () => {
              setSetup(await api('POST', '/auth/mfa/setup', { body: { password } }));
              setPassword('');
              setStep('scan');
            });
          }}
        >
          <PasswordField label="Your password" value={password} onInput={setPassword} autoFocus />
          <ErrorNote error={error} />
          <div class="buttons">
            <button type="submit" class="primary" disabled={busy}>
              Continue
            </button>
            <button type="button" onClick={reset}>
              Cancel
            </button>
          </div>
        </form>
      )}
      {step === 'scan' && setup && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void run(async () => {
              const r = await api<{ backup_codes: string[] }>('POST', '/auth/mfa/verify', {
                body: { code: code.trim() },
              });
              setCodes(r.backup_codes);
              currentUser.value = { ...me, mfa_enabled: true };
              setCode('');
              setStep('codes');
            });
          }}
        >
          <p>Scan this with your authenticator app, or type the key.</p>
          <QrCode text={setup.otpauth_uri} label="QR code for your authenticator app" />
          <p>
            Key:{' '}
            <code class="secret" data-secret={setup.secret}>
              {setup.secret.replace(/(.{4})/g, '$1 ').trim()}
            </code>
          </p>
          <CodeField value={code} onInput={setCode} autoFocus />
          <ErrorNote error={error} />
          <div class="buttons">
            <button type="submit" class="primary" disabled={busy}>
              Turn on
            </button>
            <button type="button" onClick={reset}>
              Cancel
            </button>
          </div>
        </form>
      )}
      {step === 'codes' && (
        <BackupCodes
          codes={codes}
          onDone={() => {
            setCodes([]);
            reset();
          }}
        />
      )}
      {(step === 'disable' || step === 'regenerate') && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void run(async () => {
              if (step === 'disable') {
                await api('POST', '/auth/mfa/disable', { body: { password, code: code.trim() } });
                currentUser.value = { ...me, mfa_enabled: false };
                reset();
              } else {
                const r = await api<{ backup_codes: string[] }>('POST', '/auth/mfa/backup-codes', {
                  body: { password, code: code.trim() },
                });
                setCodes(r.backup_codes);
                setPassword('');
                setCode('');
                setStep('codes');
              }
            });
          }}
        >
          <PasswordField label="Your password" value={password} onInput={setPassword} autoFocus />
          <CodeField value={code} onInput={setCode} />
          <ErrorNote error={error} />
          <div class="buttons">
            <button type="submit" class={step === 'disable' ? 'danger' : 'primary'} disabled={busy}>
              {step === 'disable' ? 'Turn off' : 'Make new codes'}
            </button>
            <button type="button" onClick={reset}>
              Cancel
            </button>
          </div>
        </form>
      )}
    </section>
  );
}

function Sessions() {
  const [list, setList] = useState<SessionInfo[] | null>(null);
  const action = useAction();
  const { error, run } = action;
  const load = () => run(async () => setList(await api<SessionInfo[]>('GET', '/auth/sessions')));
  useEffect(() => {
    void load();
  }, []);
  return (
    <section aria-labelledby="sessions-h">
      <h2 id="sessions-h">Sessions</h2>
      <ErrorNote error={error} />
      <table class="sessions">
        <caption class="sr-only">Signed-in sessions</caption>
        <thead>
          <tr>
            <th scope="col">Device</th>
            <th scope="col">Address</th>
            <th scope="col">Signed in</th>
            <th scope="col">Last used</th>
            <th scope="col">
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {(list ?? []).map((s) => (
            <tr key={s.id}>
              <td>
                <bdi>{s.user_agent || 'unknown'}</bdi>
                {s.current && <span class="tag">this browser</span>}
              </td>
              <td>{s.ip_address ?? ''}</td>
              <td>{longTime(s.created_at)}</td>
              <td>{s.last_used_at ? longTime(s.last_used_at) : ''}</td>
              <td>
                <ActionButton
                  action={action}
                  onAct={async () => {
                    await api('DELETE', `/auth/sessions/${encodeURIComponent(s.id)}`);
                    if (s.current) signOutLocally('You signed this browser out.');
                    else await load();
                  }}
                >
                  End session
                </ActionButton>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <ActionButton
        danger
        action={action}
        onAct={async () => {
          await api('DELETE', '/auth/sessions');
          signOutLocally('You signed out everywhere.');
        }}
      >
        Sign out everywhere
      </ActionButton>
    </section>
  );
}

export function Settings() {
  return (
    <main class="settings-page" id="main">
      <header class="settings-head">
        <a href="/" onClick={linkClick}>
          ← Back to chat
        </a>
        <h1>Account settings</h1>
        <button type="button" onClick={() => void signOut()}>
          Sign out
        </button>
      </header>
      <Profile />
      <TwoFactor />
      <ChangePassword />
      <Sessions />
      <EncryptionDevices />
    </main>
  );
}
