/**
 * The browser's crypto pieces in real Chromium under the app's CSP, with no server: the SFrame-style
 * voice frame transform (unit behaviour and on real encoded Opus frames through a loopback call), the
 * argon2id-keyed encrypted IndexedDB store, and libolm's wasm loading lazily from our own origin.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHarness, type HarnessPage, launchMediaBrowser, openHarness } from '../support/web-harness.js';

describe('web client crypto in Chromium (no server)', { timeout: 120_000 }, () => {
  let browser: Browser;
  let files: Awaited<ReturnType<typeof buildHarness>>;
  let h: HarnessPage;

  beforeAll(async () => {
    [browser, files] = await Promise.all([launchMediaBrowser(), buildHarness('dev/crypto-harness.ts')]);
    h = await openHarness(browser, files);
  });
  afterAll(async () => {
    expect(h?.violations).toEqual([]);
    expect(h?.pageErrors).toEqual([]);
    await browser?.close();
  });

  it('seals and opens frames; drops tampered, unknown-key, replayed, too-old and short frames', async () => {
    const r = await h.page.evaluate(async () => {
      const x = (globalThis as any).harness;
      const material = x.newKeyMaterial();
      const enc = new x.FrameEncryptor();
      const none = await enc.encrypt(new Uint8Array([1, 2, 3]));
      enc.setKey(await x.importFrameKey(7, material));
      const dec = new x.FrameDecryptor();
      dec.addKey(await x.importFrameKey(7, material));
      const other = new x.FrameDecryptor();
      other.addKey(await x.importFrameKey(7, x.newKeyMaterial())); // same id, another sender's key
      const payload = new Uint8Array(60).map((_, i) => i);
      const frames: Uint8Array[] = [];
      for (let i = 0; i < 200; i++) frames.push(await enc.encrypt(payload));
      const hex = (u: Uint8Array) => Array.from(u, (b) => b.toString(16).padStart(2, '0')).join('');
      const same = hex(frames[0]!.subarray(7)) === hex(frames[1]!.subarray(7));
      const opened = await dec.decrypt(frames[0]);
      const replay = await dec.decrypt(frames[0]);
      const wrongKey = await other.decrypt(frames[1]);
      const tampered = frames[2]!.slice();
      tampered[20]! ^= 1;
      const tamperedBody = await dec.decrypt(tampered);
      const header = frames[3]!.slice();
      header[6]! ^= 1; // counter changed: authentication must fail
      const tamperedHeader = await dec.decrypt(header);
      const unknown = frames[4]!.slice();
      unknown[0] = 8;
      const unknownKey = await dec.decrypt(unknown);
      const short = await dec.decrypt(new Uint8Array(10));
      const late = await dec.decrypt(frames[150]); // jump ahead, then an older one inside the window
      const reordered = await dec.decrypt(frames[100]);
      const tooOld = await dec.decrypt(frames[5]); // 145 behind: outside the 128-frame window
      const stillGood = await dec.decrypt(frames[3]); // authentic but 147 behind: dropped too
      return {
        none,
        same,
        opened: opened && hex(opened) === hex(payload),
        replay,
        wrongKey,
        tamperedBody,
        tamperedHeader,
        unknownKey,
        short,
        late: late && hex(late) === hex(payload),
        reordered: reordered && hex(reordered) === hex(payload),
        tooOld,
        stillGood,
        header: hex(frames[199]!.subarray(0, 7)),
        stats: dec.stats,
        wrongStats: other.stats,
        sent: enc.stats,
      };
    });
    expect(r.none).toBeNull(); // no key: nothing is sent, never the clear frame
    expect(r.same).toBe(false); // a fresh nonce per frame
    expect(r.opened).toBe(true);
    expect(r.replay).toBeNull();
    expect(r.wrongKey).toBeNull();
    expect(r.tamperedBody).toBeNull();
    expect(r.tamperedHeader).toBeNull();
    expect(r.unknownKey).toBeNull();
    expect(r.short).toBeNull();
    expect(r.late).toBe(true);
    expect(r.reordered).toBe(true);
    expect(r.tooOld).toBeNull();
    expect(r.stillGood).toBeNull();
    expect(r.header).toBe(`07${(199).toString(16).padStart(12, '0')}`); // key id, then the counter
    expect(r.stats).toEqual({ opened: 3, malformed: 1, unknownKey: 1, auth: 2, replay: 3 });
    expect(r.wrongStats.auth).toBe(1);
    expect(r.sent).toEqual({ sealed: 200, droppedNoKey: 1 });
  });

  it('keeps a few old keys for frames in flight after a rotation, then forgets them', async () => {
    const r = await h.page.evaluate(async () => {
      const x = (globalThis as any).harness;
      const enc = new x.FrameEncryptor();
      const dec = new x.FrameDecryptor();
      const mats = [0, 1, 2, 3].map(() => x.newKeyMaterial());
      enc.setKey(await x.importFrameKey(0, mats[0]));
      dec.addKey(await x.importFrameKey(0, mats[0]));
      const old = await enc.encrypt(new Uint8Array(30));
      enc.setKey(await x.importFrameKey(1, mats[1]));
      dec.addKey(await x.importFrameKey(1, mats[1]));
      const fresh = await enc.encrypt(new Uint8Array(30));
      const inFlight = (await dec.decrypt(old)) !== null;
      const next = (await dec.decrypt(fresh)) !== null;
      const again = await enc.encrypt(new Uint8Array(30));
      dec.addKey(await x.importFrameKey(2, mats[2]));
      dec.addKey(await x.importFrameKey(3, mats[3]));
      const afterThree = await dec.decrypt(again); // key 1 is still among the three kept
      const old0 = await (async () => {
        const e0 = new x.FrameEncryptor();
        e0.setKey(await x.importFrameKey(0, mats[0]));
        return dec.decrypt(await e0.encrypt(new Uint8Array(30)));
      })();
      dec.clear();
      const cleared = await dec.decrypt(await enc.encrypt(new Uint8Array(30)));
      return { inFlight, next, afterThree: afterThree !== null, old0, cleared, ids: dec.keyIds };
    });
    expect(r).toEqual({ inFlight: true, next: true, afterThree: true, old0: null, cleared: null, ids: [] });
  });

  it('carries real Opus through encoded insertable streams: the key holder hears the tone, others do not', async () => {
    expect(await h.page.evaluate(() => (globalThis as any).harness.insertableStreamsSupported())).toBe(true);
    const run = (o: unknown) => h.page.evaluate((opts) => (globalThis as any).harness.loopback(opts), o);
    const key = Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);
    const wrong = Array.from({ length: 32 }, (_, i) => (i * 53 + 5) & 0xff);
    const plain = await run({ senderKey: null, receiverKeys: null, ms: 2500 });
    const sealed = await run({ senderKey: [3, key], receiverKeys: [[3, key]], ms: 2500 });
    const noKey = await run({ senderKey: [3, key], receiverKeys: [[3, wrong]], ms: 2500 });
    const raw = await run({ senderKey: [3, key], receiverKeys: null, ms: 2500 });
    // Baseline: the clear tone is heard and is a tone.
    expect(plain.maxRms).toBeGreaterThan(0.02);
    expect(plain.toneRatio).toBeGreaterThan(0.5);
    // Sealed and opened with the key: the same tone.
    expect(sealed.sent.sealed).toBeGreaterThan(50);
    expect(sealed.received.opened).toBeGreaterThan(50);
    expect(sealed.received.auth + sealed.received.unknownKey).toBe(0);
    expect(sealed.maxRms).toBeGreaterThan(0.02);
    expect(sealed.toneRatio).toBeGreaterThan(0.5);
    // The wrong key: every frame fails authentication and is dropped; nothing is played.
    expect(noKey.received.opened).toBe(0);
    expect(noKey.received.auth).toBeGreaterThan(50);
    expect(noKey.maxRms).toBeLessThan(0.005);
    // Ciphertext straight into the decoder (what the server or a keyless client would hear): no tone.
    expect(raw.toneRatio).toBeLessThan(0.1);
  });

  it('keeps the Olm account only sealed in IndexedDB, unlockable after a reload with the secret only', async () => {
    const before = h.requests.length;
    const made = await h.page.evaluate(async () => {
      const x = (globalThis as any).harness;
      const t0 = performance.now();
      const store = await x.SecureStore.unlock('test-keys', 'correct horse battery staple');
      const kdfMs = performance.now() - t0;
      const Olm = await x.loadOlm();
      const account = new Olm.Account();
      account.create();
      const pickleKey = Array.from(crypto.getRandomValues(new Uint8Array(32)));
      const pickle = account.pickle(Uint8Array.from(pickleKey));
      const identity = JSON.parse(account.identity_keys());
      await store.put('pickle_key', pickleKey);
      await store.put('account', pickle);
      store.lock();
      account.free();
      // What IndexedDB really holds, read around the store.
      const db: any = await new Promise((res, rej) => {
        const r = (globalThis as any).indexedDB.open('test-keys');
        r.onsuccess = () => res(r.result);
        r.onerror = () => rej(r.error);
      });
      const rows: any[] = await new Promise((res) => {
        const r = db.transaction('records').objectStore('records').getAll();
        r.onsuccess = () => res(r.result);
      });
      db.close();
      const dump = rows.map((s) => String.fromCharCode(...s.ct)).join('|');
      return { identity, pickle, dump, rows: rows.length, kdfMs, olmVersion: Olm.get_library_version() };
    });
    expect(made.rows).toBe(2);
    expect(made.dump).not.toContain(made.pickle.slice(0, 24));
    expect(made.olmVersion[0]).toBe(3);
    expect(made.kdfMs).toBeGreaterThan(50); // argon2id with 64 MiB really ran
    const wasm = h.requests.slice(before).filter((u) => u.endsWith('.wasm'));
    expect(wasm).toHaveLength(1);
    expect(wasm[0]).toMatch(/^http:\/\/localhost\/assets\/olm-[\w-]+\.wasm$/);

    await h.reload();
    const after = await h.page.evaluate(async () => {
      const x = (globalThis as any).harness;
      let wrong = '';
      try {
        await x.SecureStore.unlock('test-keys', 'correct horse battery stapler');
      } catch (e) {
        wrong = e instanceof x.WrongSecretError ? 'wrong' : String(e);
      }
      const store = await x.SecureStore.unlock('test-keys', 'correct horse battery staple');
      const Olm = await x.loadOlm();
      const account = new Olm.Account();
      account.unpickle(Uint8Array.from(await store.get('pickle_key')), await store.get('account'));
      const identity = JSON.parse(account.identity_keys());
      account.free();
      // A sealed record moved under another name does not open.
      const db: any = await new Promise((res) => {
        const r = (globalThis as any).indexedDB.open('test-keys');
        r.onsuccess = () => res(r.result);
      });
      const sealed = await new Promise((res) => {
        const r = db.transaction('records').objectStore('records').get('account');
        r.onsuccess = () => res(r.result);
      });
      await new Promise((res) => {
        const tx = db.transaction('records', 'readwrite');
        tx.objectStore('records').put(sealed, 'moved');
        tx.oncomplete = res;
      });
      db.close();
      let moved = '';
      try {
        await store.get('moved');
        moved = 'opened';
      } catch {
        moved = 'refused';
      }
      store.lock();
      await x.SecureStore.destroy('test-keys');
      return { wrong, identity, moved, exists: await x.SecureStore.exists('test-keys') };
    });
    expect(after.wrong).toBe('wrong');
    expect(after.identity).toEqual(made.identity);
    expect(after.moved).toBe('refused');
    expect(after.exists).toBe(false);
  });
});
