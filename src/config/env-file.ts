/** Parser and writer for `voicechat.env`: KEY=VALUE lines, readable by systemd's EnvironmentFile=. */

export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0])) {
      const quote = value[0];
      value = value.slice(1, -1);
      if (quote === '"') value = value.replace(/\\(.)/g, '$1');
    }
    out[key] = value;
  }
  return out;
}

export function formatEnvFile(values: Record<string, string>, header: string[] = []): string {
  const lines = header.map((h) => `# ${h}`);
  for (const [k, v] of Object.entries(values)) {
    lines.push(/[\s#"'$`\\]/.test(v) ? `${k}="${v.replace(/["\\$`]/g, '\\$&')}"` : `${k}=${v}`);
  }
  return `${lines.join('\n')}\n`;
}
