/**
 * This browser's encrypted key store: an IndexedDB database whose every record (the Olm account and
 * session pickles, Megolm sessions) is sealed with AES-256-GCM under a key derived from a secret the
 * user knows — the password at sign-in or a separate passphrase — with argon2id (hash-wasm, a memory-
 * hard KDF, so a copied profile cannot be brute-forced cheaply). The derived key is a non-extractable
 * WebCrypto key held in memory only; nothing secret is ever written in the clear.
 *
 * Each record's additional data is `<database>\n<record name>`, so records cannot be swapped or moved
 * between stores without failing authentication. A check record sealed at creation tells a wrong
 * secret apart from a good one without touching the real records.
 */

export interface KdfParams {
  alg: 'argon2id';
  /** Memory in KiB. */
  m: number;
  t: number;
  p: number;
  salt: string;
}

/** 64 MiB, 3 passes: about a second in a browser, far above the OWASP minimum (19 MiB, 2). */
export const DEFAULT_KDF: Omit<KdfParams, 'salt'> = { alg: 'argon2id', m: 65_536, t: 3, p: 1 };

interface Sealed {
  iv: Uint8Array;
  ct: Uint8Array;
}

interface Meta {
  v: 1;
  kdf: KdfParams;
  check: Sealed;
}

const RECORDS = 'records';
const META = 'meta';
const CHECK = 'voicechat secure store v1';
const te = new TextEncoder();
const td = new TextDecoder();

export class WrongSecretError extends Error {
  constructor() {
    super('That passphrase does not unlock this device’s keys.');
  }
}

const b64 = (u: Uint8Array) => btoa(String.fromCharCode(...u));
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function openDb(name: string): Promise<IDBDatabase> {
  const r = indexedDB.open(name, 1);
  r.onupgradeneeded = () => {
    r.result.createObjectStore(RECORDS);
    r.result.createObjectStore(META);
  };
  return request(r);
}

async function deriveKey(secret: string, kdf: KdfParams): Promise<CryptoKey> {
  // hash-wasm is loaded only when a store is unlocked (its wasm is inlined in the chunk).
  const { argon2id } = await import('hash-wasm');
  const raw = await argon2id({
    password: secret.normalize('NFC'),
    salt: unb64(kdf.salt),
    iterations: kdf.t,
    parallelism: kdf.p,
    memorySize: kdf.m,
    hashLength: 32,
    outputType: 'binary',
  });
  const key = await crypto.subtle.importKey('raw', raw as BufferSource, 'AES-GCM', false, ['encrypt', 'decrypt']);
  raw.fill(0);
  return key;
}

async function seal(key: CryptoKey, aad: string, plain: Uint8Array): Promise<Sealed> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt(
    { name: 'AES-GCM', iv: iv as BufferSource, additionalData: te.encode(aad) },
    key,
    plain as BufferSource,
  );
  return { iv, ct: new Uint8Array(ct) };
}

async function open(key: CryptoKey, aad: string, s: Sealed): Promise<Uint8Array> {
  const pt = await crypto.subtle.decrypt(
    { name: 'AES-GCM', iv: s.iv as BufferSource, additionalData: te.encode(aad) },
    key,
    s.ct as BufferSource,
  );
  return new Uint8Array(pt);
}

export class SecureStore {
  readonly name: string;
  #db: IDBDatabase;
  #key: CryptoKey | undefined;

  private constructor(name: string, db: IDBDatabase, key: CryptoKey) {
    this.name = name;
    this.#db = db;
    this.#key = key;
  }

  /** Whether a store of this name was ever created in this browser profile. */
  static async exists(name: string): Promise<boolean> {
    const db = await openDb(name);
    try {
      const meta = await request(db.transaction(META).objectStore(META).get('meta'));
      return meta !== undefined;
    } finally {
      db.close();
    }
  }

  /**
   * Opens the store with the secret, creating it (with fresh salt) when it does not exist yet.
   * A wrong secret throws WrongSecretError and changes nothing.
   */
  static async unlock(name: string, secret: string, kdf: Omit<KdfParams, 'salt'> = DEFAULT_KDF): Promise<SecureStore> {
    if (!secret) throw new WrongSecretError();
    const db = await openDb(name);
    try {
      const meta = (await request(db.transaction(META).objectStore(META).get('meta'))) as Meta | undefined;
      if (meta) {
        const key = await deriveKey(secret, meta.kdf);
        try {
          const check = await open(key, `${name}\n#check`, meta.check);
          if (td.decode(check) !== CHECK) throw new Error('check');
        } catch {
          throw new WrongSecretError();
        }
        return new SecureStore(name, db, key);
      }
      const params: KdfParams = { ...kdf, salt: b64(crypto.getRandomValues(new Uint8Array(16))) };
      const key = await deriveKey(secret, params);
      const created: Meta = { v: 1, kdf: params, check: await seal(key, `${name}\n#check`, te.encode(CHECK)) };
      const tx = db.transaction(META, 'readwrite');
      // `add` fails when another tab created the store meanwhile: then that one's secret counts.
      tx.objectStore(META).add(created, 'meta');
      await new Promise<void>((resolve, reject) => {
        tx.oncomplete = () => resolve();
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      });
      return new SecureStore(name, db, key);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  /** Deletes the whole store (the device's keys are gone for good). */
  static async destroy(name: string): Promise<void> {
    await request(indexedDB.deleteDatabase(name));
  }

  get locked(): boolean {
    return this.#key === undefined;
  }

  #requireKey(): CryptoKey {
    if (!this.#key) throw new Error('The key store is locked.');
    return this.#key;
  }

  async get<T = unknown>(record: string): Promise<T | undefined> {
    const key = this.#requireKey();
    const s = (await request(this.#db.transaction(RECORDS).objectStore(RECORDS).get(record))) as Sealed | undefined;
    if (!s) return undefined;
    return JSON.parse(td.decode(await open(key, `${this.name}\n${record}`, s))) as T;
  }

  async put(record: string, value: unknown): Promise<void> {
    const s = await seal(this.#requireKey(), `${this.name}\n${record}`, te.encode(JSON.stringify(value)));
    const tx = this.#db.transaction(RECORDS, 'readwrite');
    tx.objectStore(RECORDS).put(s, record);
    await new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }

  async delete(record: string): Promise<void> {
    this.#requireKey();
    await request(this.#db.transaction(RECORDS, 'readwrite').objectStore(RECORDS).delete(record));
  }

  async keys(): Promise<string[]> {
    this.#requireKey();
    return (await request(this.#db.transaction(RECORDS).objectStore(RECORDS).getAllKeys())).map(String);
  }

  /** Forgets the key (records stay sealed on disk) and closes the database. */
  lock(): void {
    this.#key = undefined;
    this.#db.close();
  }
}
