/**
 * The HTTP client: JSON requests with the bearer token, one silent refresh-and-retry on
 * `TOKEN_EXPIRED`, errors as `ApiError` with the server's code, and uploads through XHR (the only
 * browser API with upload progress). Requests go to the page's own origin only.
 */
import { accessToken, refreshTokens, signOutLocally } from './session';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter?: number,
    readonly details?: { path: string; message: string }[],
  ) {
    super(message);
  }
  /** True when the request may or may not have reached the server (the network failed). */
  get ambiguous(): boolean {
    return this.status === 0;
  }
}

export async function toApiError(res: Response): Promise<ApiError> {
  let body: any;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  const retry = Number(res.headers.get('retry-after'));
  const e = body?.error;
  return new ApiError(
    res.status,
    typeof e?.code === 'string' ? e.code : `HTTP_${res.status}`,
    typeof e?.message === 'string' ? e.message : res.statusText || 'Request failed',
    Number.isFinite(retry) && retry > 0 ? retry : undefined,
    Array.isArray(e?.details) ? e.details : undefined,
  );
}

const networkError = () => new ApiError(0, 'NETWORK', 'Cannot reach the server.');

export interface RequestOptions {
  body?: unknown;
  auth?: boolean;
  signal?: AbortSignal;
}

/** `method path` with a JSON body; resolves with the parsed answer (undefined for 204). */
export async function api<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const auth = opts.auth ?? true;
  for (let attempt = 0; ; attempt++) {
    const headers: Record<string, string> = {};
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    if (auth && accessToken.value) headers.Authorization = `Bearer ${accessToken.value}`;
    let res: Response;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: opts.signal,
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      throw networkError();
    }
    if (res.ok) return (res.status === 204 ? undefined : await res.json()) as T;
    const err = await toApiError(res);
    if (auth && err.status === 401 && err.code === 'TOKEN_EXPIRED' && attempt === 0) {
      if (await refreshTokens()) continue;
    } else if (auth && err.status === 401 && err.code === 'UNAUTHENTICATED') {
      signOutLocally('Your session has ended. Please sign in again.');
    }
    throw err;
  }
}

/** Fetches a protected file (attachments) with the bearer token. */
export async function fetchBlob(path: string): Promise<Blob> {
  for (let attempt = 0; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(path, {
        headers: accessToken.value ? { Authorization: `Bearer ${accessToken.value}` } : {},
        credentials: 'omit',
      });
    } catch {
      throw networkError();
    }
    if (res.ok) return res.blob();
    const err = await toApiError(res);
    if (err.code === 'TOKEN_EXPIRED' && attempt === 0 && (await refreshTokens())) continue;
    throw err;
  }
}

/**
 * The name for `X-Filename`: printable ASCII as it is; anything else (non-ASCII, which a header cannot
 * carry, or a `%`) percent-encoded as UTF-8, the form the server accepts for such names.
 */
export const headerFilename = (name: string): string =>
  /^[\x20-\x7e]*$/.test(name) && !name.includes('%') ? name : encodeURIComponent(name);

/** Uploads a file as the raw body with its name in `X-Filename`, reporting progress from 0 to 1. */
export function uploadFile<T>(path: string, file: File, onProgress: (fraction: number) => void): Promise<T> {
  const attempt = (retried: boolean): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', path);
      if (accessToken.value) xhr.setRequestHeader('Authorization', `Bearer ${accessToken.value}`);
      xhr.setRequestHeader(
        'Content-Type',
        file.type && file.type !== 'application/json' ? file.type : 'application/octet-stream',
      );
      xhr.setRequestHeader('X-Filename', headerFilename(file.name));
      xhr.upload.onprogress = (e) => {
        // 1 means stored: the last bytes sent are not yet the server's answer.
        if (e.lengthComputable) onProgress(Math.min(0.99, e.loaded / e.total));
      };
      xhr.onerror = () => reject(networkError());
      xhr.onload = async () => {
        const res = new Response(xhr.responseText || null, {
          status: xhr.status,
          headers: { 'retry-after': xhr.getResponseHeader('retry-after') ?? '' },
        });
        if (xhr.status >= 200 && xhr.status < 300) {
          onProgress(1);
          resolve(JSON.parse(xhr.responseText) as T);
          return;
        }
        const err = await toApiError(res);
        if (err.code === 'TOKEN_EXPIRED' && !retried && (await refreshTokens())) attempt(true).then(resolve, reject);
        else reject(err);
      };
      xhr.send(file);
    });
  return attempt(false);
}

const seconds = (n: number) => (n >= 90 ? `${Math.ceil(n / 60)} minutes` : `${Math.ceil(n)} seconds`);

/** A sentence for the person in front of the screen, for every documented error. */
export function describeError(e: unknown): string {
  if (!(e instanceof ApiError)) return (e as Error)?.message || 'Something went wrong.';
  switch (e.code) {
    case 'NETWORK':
      return 'Cannot reach the server. Check your connection and try again.';
    case 'RATE_LIMITED':
      return e.retryAfter
        ? `Too many requests. Try again in ${seconds(e.retryAfter)}.`
        : 'Too many requests. Wait a moment.';
    case 'INVALID_CREDENTIALS':
      return 'Wrong username or password.';
    case 'ACCOUNT_LOCKED':
      return 'This account is locked after too many failed sign-ins. Try again in 15 minutes, or ask the admin to unlock it.';
    case 'INVALID_MFA_CODE':
      return 'That code is wrong or was already used. Wait for the next code and try again.';
    case 'MFA_REQUIRED':
      return 'Enter the code from your authenticator app, or a backup code.';
    case 'TOKEN_REUSED':
      return 'Your session was ended for safety (a sign-in token was used twice). Please sign in again.';
    case 'TOKEN_EXPIRED':
    case 'UNAUTHENTICATED':
      return 'Your session has ended. Please sign in again.';
    case 'FORBIDDEN':
      return `Not allowed: ${e.message}`;
    case 'NOT_FOUND':
      return `Not found: ${e.message}`;
    case 'CONFLICT':
      return e.message;
    case 'PAYLOAD_TOO_LARGE':
      return 'That file is too large for this server.';
    case 'UNSUPPORTED_MEDIA_TYPE':
      return `That file type is not allowed: ${e.message}`;
    case 'VALIDATION_FAILED':
      return e.details?.length
        ? e.details.map((d) => `${d.path ? `${d.path}: ` : ''}${d.message}`).join('; ')
        : e.message;
    default:
      return e.message || 'Something went wrong on the server.';
  }
}
