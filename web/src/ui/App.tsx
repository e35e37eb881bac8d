/** Top level: restores the session, starts the gateway, and picks the screen for the current path. */
import { useEffect } from 'preact/hooks';
import { match, navigate, route } from '../lib/router';
import { authState, currentUser, hasStoredSession, refreshTokens, signOutLocally } from '../lib/session';
import { loadLatest } from '../state/messages';
import { gateway } from '../state/store';
import { InviteJoin, Register, ResetPassword, SignIn } from './auth';
import { Chat } from './chat';
import { DirectMessages } from './dm';
import { Settings } from './settings';

async function restore(): Promise<void> {
  if (!hasStoredSession()) {
    signOutLocally();
    return;
  }
  // A reload: the refresh token brings back an access token (or says the session is over).
  if (await refreshTokens()) {
    // The gateway's ready brings the user; the open channel's history need not wait for it.
    const open = match('/channels/:guild/:channel', location.pathname);
    if (open?.channel) void loadLatest(open.channel);
  } else if (authState.value === 'unknown') {
    // The server could not be reached: keep the stored token and try again shortly.
    setTimeout(() => void restore(), 3_000);
  }
}

const Loading = () => (
  <main class="center" id="main">
    <p class="muted">Loading…</p>
  </main>
);

export function App() {
  const state = authState.value;
  const path = route.value;
  useEffect(() => {
    void restore();
  }, []);
  useEffect(() => {
    if (state === 'signed-in') gateway.start();
  }, [state]);

  const invite = match('/invite/:code', path) as { code: string } | null;
  if (path === '/reset-password') return <ResetPassword />;
  if (state === 'unknown') return <Loading />;
  if (state === 'signed-out') {
    if (invite) return <Register inviteCode={invite.code} />;
    if (path === '/register') return <Register />;
    if (path !== '/login') {
      const next = path === '/' ? '' : `?next=${encodeURIComponent(path)}`;
      queueMicrotask(() => navigate(`/login${next}`, true));
    }
    return <SignIn />;
  }
  if (invite) return <InviteJoin code={invite.code} />;
  if (path === '/settings') return currentUser.value ? <Settings /> : <Loading />;
  if (path === '/login' || path === '/register') {
    queueMicrotask(() => navigate('/', true));
    return null;
  }
  const dmRoute = match('/dm/:channel?', path);
  if (dmRoute) return <DirectMessages channelId={dmRoute.channel} />;
  const settingsRoute = match('/channels/:guild/:channel/settings', path);
  if (settingsRoute?.guild && settingsRoute.channel)
    return <Chat guildId={settingsRoute.guild} channelId={settingsRoute.channel} settings />;
  const chat = match('/channels/:guild?/:channel?', path);
  return <Chat guildId={chat?.guild} channelId={chat?.channel} />;
}
