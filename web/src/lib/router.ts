/** A tiny history router: the current path as a signal, `navigate`, and a click handler for links. */
import { signal } from '@preact/signals';

export const route = signal(location.pathname);

export function navigate(to: string, replace = false): void {
  if (to === location.pathname + location.search + location.hash) return;
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  route.value = location.pathname;
}

addEventListener('popstate', () => {
  route.value = location.pathname;
});

/** onClick for `<a href>` inside the app: same-origin navigation without a reload. */
export function linkClick(e: MouseEvent): void {
  const a = e.currentTarget as HTMLAnchorElement;
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  if (a.origin !== location.origin) return;
  e.preventDefault();
  navigate(a.pathname + a.search + a.hash);
}

/** Matches `/a/:b/:c?`-style patterns; returns the params or null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const p = pattern.split('/').filter(Boolean);
  const s = path.split('/').filter(Boolean);
  const out: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    const part = p[i]!;
    const optional = part.endsWith('?');
    const name = part.replace(/^:|\?$/g, '');
    const value = s[i];
    if (part.startsWith(':')) {
      if (value === undefined) {
        if (optional) continue;
        return null;
      }
      out[name] = decodeURIComponent(value);
    } else if (value !== part) return null;
  }
  return s.length <= p.length ? out : null;
}
