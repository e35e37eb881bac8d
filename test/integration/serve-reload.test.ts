/**
 * `systemctl reload` = SIGHUP to a real `voicechat serve`: it re-reads the keyring file (a plain
 * install can read it) and reports the keys it now holds, so a freshly staged key can be rotated to
 * without a restart.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import Init from '../../commands/init.js';
import Keygen from '../../commands/keygen.js';
import { createDb } from '../../src/db/knex.js';
import { runCommand } from '../support/cli.js';
import { createTestDatabase, type TestDatabase, tempDir } from '../support/db.js';
import { mustStart, type ServeProcess } from '../support/process.js';

describe('serve reloads the keyring on SIGHUP', () => {
  let database: TestDatabase;
  let serve: ServeProcess | undefined;
  let configPath: string;

  beforeAll(async () => {
    database = await createTestDatabase({ migrate: false });
    const dir = tempDir('vc-reload-');
    configPath = path.join(dir, 'voicechat.env');
    const init = await runCommand(Init, [
      '--yes',
      '--config',
      configPath,
      '--data-dir',
      dir,
      ...(database.dialect === 'pg' ? ['--database-url', database.databaseUrl] : []),
    ]);
    expect(init.exit, init.stderr).toBe(0);
  });
  afterAll(async () => {
    await serve?.stop();
    await database?.drop();
  });

  it('a key staged after start is held after SIGHUP', async () => {
    serve = await mustStart(['--config', configPath, '--host', '127.0.0.1', '--port', '0'], {
      env: { VOICECHAT_NODE_HEARTBEAT_MS: '200' },
    });
    const added = await runCommand(Keygen, ['--config', configPath, '--purpose', 'mfa', '--add', '--json']);
    expect(added.exit, added.stderr).toBe(0);
    const { id } = JSON.parse(added.stdout);
    const config = (await import('../../src/config/index.js')).loadConfig({ configPath, env: {} });
    const db = createDb({ dialect: config.dialect, sqliteFile: config.sqliteFile, databaseUrl: config.databaseUrl });
    const heldIds = async () => {
      const row = await db('server_nodes').first('key_ids');
      return row ? (JSON.parse(row.key_ids).mfa as string[]) : [];
    };
    try {
      expect(await heldIds()).not.toContain(id);
      serve.child.kill('SIGHUP');
      // The next heartbeat records the held keys, and the log line reaches our pipe on its own time
      // (logging never blocks): wait for both, as a loaded machine can delay either.
      await vi.waitFor(async () => expect(await heldIds()).toContain(id), { timeout: 10_000, interval: 100 });
      await vi.waitFor(
        () => expect(serve?.logs().some((l) => l.msg === 'SIGHUP: keyring reloaded' && l.reloaded === true)).toBe(true),
        { timeout: 5_000, interval: 50 },
      );
      expect(serve.child.exitCode).toBeNull();
    } finally {
      await db.destroy();
    }
  });
});
