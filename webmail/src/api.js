// The one place that calls fetch: the mailbox API (openapi.yaml) on this origin.
//
// The token lives in sessionStorage (gone when the tab closes, never in a URL or a
// cookie). A 401 tells the app through onSessionEnded, so it can ask for the password
// again without throwing away what the user was doing.

const STORAGE_KEY = 'mailpipe.session';

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

// What a person is told, by the API's error code; the server's own text is kept for
// invalid_request, where it names what to fix.
const PLAIN_WORDS = {
  invalid_credentials: 'The address or password is not right.',
  unauthenticated: 'Your session has ended. Please sign in again.',
  not_found: 'That is no longer there. It may have been moved or deleted.',
  conflict: 'That clashes with what is already there.',
  too_large: 'That is too large to send. Try smaller or fewer attachments.',
  unavailable: 'The mail store is busy for a moment. Please try again.',
  internal: 'Something went wrong on the server. Please try again.',
  network: 'The server cannot be reached. Check your connection and try again.',
};

export function plainWords(error) {
  if (!(error instanceof ApiError)) return PLAIN_WORDS.internal;
  if (error.code === 'throttled') {
    return `${error.message || 'Too many tries.'} Please wait a little and try again.`;
  }
  if (error.code === 'invalid_request' || error.code === 'conflict') {
    return error.message || PLAIN_WORDS[error.code];
  }
  return PLAIN_WORDS[error.code] || error.message || PLAIN_WORDS.internal;
}

// The API's origin: the page's own, locally and in AWS (CloudFront sends /v1/* to the
// HttpApi); the meta names another only where the page is served apart from the API.
const API = (document.querySelector('meta[name="mailpipe-api"]')?.content || '').replace(/\/$/, '');

let session = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || 'null');
let sessionEnded = () => {};

export function onSessionEnded(callback) {
  sessionEnded = callback;
}

export function currentSession() {
  if (session && session.expires_at > Date.now()) return session;
  return null;
}

export async function signIn(address, password) {
  const answer = await request('POST', '/v1/session', { json: { address, password }, anonymous: true });
  session = { address: address.trim().toLowerCase(), token: answer.token,
              expires_at: Date.now() + answer.expires_in * 1000 };
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
  return session;
}

export function signOut() {
  session = null;
  sessionStorage.removeItem(STORAGE_KEY);
}

async function request(method, path, { json, query, blob = false, anonymous = false } = {}) {
  const headers = {};
  if (!anonymous) {
    if (!currentSession()) {
      sessionEnded();
      throw new ApiError(401, 'unauthenticated', PLAIN_WORDS.unauthenticated);
    }
    headers.Authorization = `Bearer ${session.token}`;
  }
  if (json !== undefined) headers['Content-Type'] = 'application/json';
  const url = API + (query ? `${path}?${new URLSearchParams(query)}` : path);
  let response;
  try {
    response = await fetch(url, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) });
  } catch {
    throw new ApiError(0, 'network', PLAIN_WORDS.network);
  }
  if (response.status === 401 && !anonymous) {
    signOut();
    sessionEnded();
  }
  if (!response.ok) {
    let document = {};
    try { document = await response.json(); } catch { /* a gateway page, not JSON */ }
    const error = document.error || {};
    const code = error.code || { 401: 'unauthenticated', 404: 'not_found', 413: 'too_large',
                                 503: 'unavailable' }[response.status] || 'internal';
    throw new ApiError(response.status, code, error.message || document.message || '', error.field);
  }
  if (blob) return response.blob();
  return response.status === 204 ? null : response.json();
}

// A large file goes straight to the store with the form /v1/uploads gives; the message
// then names it by upload_id. The store answers on another origin without CORS, so the
// answer cannot be read: the API checks the upload is there when the message is made.
async function upload(file) {
  const form = await request('POST', '/v1/uploads', {
    json: { filename: file.name, content_type: file.type || 'application/octet-stream' } });
  if (file.size > form.max_size) {
    throw new ApiError(413, 'too_large', '');
  }
  const body = new FormData();
  for (const [name, value] of Object.entries(form.fields)) body.append(name, value);
  body.append('file', file);
  try {
    await fetch(form.url, { method: 'POST', body, mode: 'no-cors' });
  } catch {
    throw new ApiError(0, 'network', PLAIN_WORDS.network);
  }
  return form.upload_id;
}

const segment = encodeURIComponent;

export const api = {
  folders: () => request('GET', '/v1/mailboxes'),
  createFolder: (name) => request('POST', '/v1/mailboxes', { json: { name } }),
  renameFolder: (name, newName) => request('PATCH', `/v1/mailboxes/${segment(name)}`, { json: { name: newName } }),
  deleteFolder: (name) => request('DELETE', `/v1/mailboxes/${segment(name)}`),
  messages: (folder, cursor, limit = 50) => request('GET', `/v1/mailboxes/${segment(folder)}/messages`,
    { query: cursor ? { limit, cursor } : { limit } }),
  search: (q, cursor) => request('GET', '/v1/search', { query: cursor ? { q, cursor } : { q } }),
  message: (id) => request('GET', `/v1/messages/${segment(id)}`),
  change: (id, change) => request('PATCH', `/v1/messages/${segment(id)}`, { json: change }),
  remove: (id) => request('DELETE', `/v1/messages/${segment(id)}`),
  raw: (id) => request('GET', `/v1/messages/${segment(id)}/raw`, { blob: true }),
  attachment: (id, index) => request('GET', `/v1/messages/${segment(id)}/attachments/${index}`, { blob: true }),
  delivery: (id) => request('GET', `/v1/messages/${segment(id)}/delivery`),
  send: (composition) => request('POST', '/v1/messages', { json: composition }),
  createDraft: (composition) => request('POST', '/v1/drafts', { json: composition }),
  updateDraft: (id, composition) => request('PUT', `/v1/drafts/${segment(id)}`, { json: composition }),
  sendDraft: (id) => request('POST', `/v1/drafts/${segment(id)}/send`),
  junkFilter: () => request('GET', '/v1/junk-filter'),
  saveJunkFilter: (settings) => request('PUT', '/v1/junk-filter', { json: settings }),
  upload,
};
