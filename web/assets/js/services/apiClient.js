// apiClient.js: the REST API wrapper. Every failure becomes an ApiError with a message fit for
// the page (the seed's texts, UI-25); full details go to the console at debug level only, so a
// server that is down never produces console errors on its own.

export const API_BASE = '/api/v1';
const DEFAULT_TIMEOUT_MS = 8000;

const CODE_MESSAGES = {
  CAPTURE_FAILED: 'Network capture temporarily unavailable',
  MEMORY_LIMIT: 'System memory limit reached - older data cleared',
  INTERFACE_DOWN: 'Network interface offline - check connection',
};
export const DEFAULT_MESSAGE = 'System temporarily unavailable';
export const OFFLINE_MESSAGE = 'Cannot reach the Netwatch server - retrying';

export class ApiError extends Error {
  constructor({ kind, status = 0, code = '', message, details = null, requestId = '', retryAfter = 0 }) {
    super(message);
    this.name = 'ApiError';
    this.kind = kind; // 'network' | 'timeout' | 'client' | 'server' | 'auth' | 'rate' | 'parse'
    this.status = status;
    this.code = code;
    this.details = details;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }

  /** Whether retrying the same request can help (a 400 will not). */
  get retryable() {
    return this.kind === 'network' || this.kind === 'timeout' || this.kind === 'server' || this.kind === 'rate';
  }
}

/** The text shown on the page for a failed request. */
export function userMessage(err) {
  if (!(err instanceof ApiError)) return DEFAULT_MESSAGE;
  if (err.kind === 'network' || err.kind === 'timeout') return OFFLINE_MESSAGE;
  if (err.code && CODE_MESSAGES[err.code]) return CODE_MESSAGES[err.code];
  if (err.kind === 'client') return `Invalid request: ${err.message}`;
  if (err.kind === 'auth') return 'Not authorised: this server needs an access token';
  if (err.kind === 'rate') return 'Too many requests - slowing down';
  return DEFAULT_MESSAGE;
}

/** Query string from an object, leaving out empty values. */
export function toQuery(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '' || v === 'all') continue;
    q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

let authToken = null;
/** Hook for the security engineer's bearer token (kept in memory only, D-13). */
export function setAuthToken(token) {
  authToken = token || null;
}
export function authHeaders() {
  return authToken ? { Authorization: `Bearer ${authToken}` } : {};
}

async function errorFromResponse(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  const e = (body && body.error) || {};
  const kind = res.status === 401 || res.status === 403 ? 'auth'
    : res.status === 429 ? 'rate'
      : res.status >= 500 ? 'server' : 'client';
  return new ApiError({
    kind,
    status: res.status,
    code: typeof e.code === 'string' ? e.code : '',
    message: typeof e.message === 'string' ? e.message : `HTTP ${res.status}`,
    details: e.details || null,
    requestId: typeof e.requestId === 'string' ? e.requestId : '',
    retryAfter: Number(res.headers.get('Retry-After')) || 0,
  });
}

/** GET a JSON document from the API. */
export async function getJson(path, params, { timeoutMs = DEFAULT_TIMEOUT_MS, signal, acceptStatus = [] } = {}) {
  const url = `${API_BASE}${path}${toQuery(params)}`;
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  const onAbort = () => ctrl.abort();
  if (signal) signal.addEventListener('abort', onAbort, { once: true });
  let res;
  try {
    res = await fetch(url, {
      headers: { Accept: 'application/json', ...authHeaders() },
      signal: ctrl.signal,
      cache: 'no-store',
    });
  } catch (err) {
    const aborted = signal && signal.aborted;
    throw new ApiError({
      kind: aborted ? 'aborted' : (ctrl.signal.aborted ? 'timeout' : 'network'),
      message: aborted ? 'aborted' : String(err && err.message),
    });
  } finally {
    clearTimeout(timer);
    if (signal) signal.removeEventListener('abort', onAbort);
  }
  if (!res.ok && !acceptStatus.includes(res.status)) throw await errorFromResponse(res);
  try {
    return await res.json();
  } catch {
    throw new ApiError({ kind: 'parse', status: res.status, message: 'Malformed response from the server' });
  }
}

export const api = {
  // /health answers 503 with a full body when capture is down (D-09): that is data, not an error.
  health: (opts) => getJson('/health', null, { ...opts, acceptStatus: [503] }),
  metrics: (opts) => getJson('/metrics', null, opts),
  history: (duration, interval, opts) => getJson('/metrics/history', { duration, interval }, opts),
  topTalkers: (params, opts) => getJson('/top-talkers', params, opts),
  protocols: (params, opts) => getJson('/protocols', params, opts),
  flows: (params, opts) => getJson('/flows', params, opts),
  csvUrl: (params) => `${API_BASE}/flows${toQuery({ ...params, limit: undefined, offset: undefined, format: 'csv' })}`,
};

/** Capped exponential backoff with jitter: 1 s, 2 s, 4 s ... up to `cap` ms. */
export function backoffDelay(attempt, { base = 1000, cap = 15000, random = Math.random } = {}) {
  const exp = Math.min(cap, base * 2 ** Math.max(0, attempt));
  return Math.round(exp / 2 + (random() * exp) / 2);
}
