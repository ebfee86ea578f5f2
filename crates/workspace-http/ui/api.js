// The API client: bearer token from sessionStorage, JSON errors turned into ApiError, uploads
// through XMLHttpRequest so the progress bar follows real upload progress events, and every
// route the browser uses (listing with sort, search and folders; move; versions; trash; links).

const TOKEN_KEY = 'workspace.token';
const BASE = '/api/workspace';

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** An error answered by the server (`status` 0: the request never got an answer). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
  }
}

function signalUnauthorized() {
  window.dispatchEvent(new CustomEvent('workspace:unauthorized'));
}

async function errorFrom(response) {
  let code = '';
  let message = '';
  try {
    const body = await response.json();
    code = typeof body.error === 'string' ? body.error : '';
    message = typeof body.message === 'string' ? body.message : '';
  } catch {
    message = response.statusText;
  }
  if (response.status === 401) signalUnauthorized();
  return new ApiError(response.status, code, message);
}

function url(path, query = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '' && value !== false) params.set(key, String(value));
  }
  const qs = params.toString();
  return qs ? `${BASE}${path}?${qs}` : `${BASE}${path}`;
}

async function request(method, path, { query, headers = {}, body, token = getToken(), accept = [] } = {}) {
  let response;
  const init = {
    method,
    headers: { Authorization: `Bearer ${token}`, ...headers },
    cache: 'no-store',
    credentials: 'omit',
  };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  try {
    response = await fetch(url(path, query), init);
  } catch (err) {
    throw new ApiError(0, 'network', `The server did not answer (${err.message}).`);
  }
  if (!response.ok && !accept.includes(response.status)) throw await errorFrom(response);
  return response;
}

async function json(method, path, options) {
  const response = await request(method, path, options);
  return response.status === 204 ? null : response.json();
}

const fileUrl = (id, tail = '') => `/files/${encodeURIComponent(id)}${tail}`;

export const usage = (token) => json('GET', '/usage', { token });

/** Sort keys of the listing and the order a person expects first for each. */
export const SORTS = {
  'created_at:desc': 'Newest first',
  'created_at:asc': 'Oldest first',
  'path:asc': 'Name A–Z',
  'path:desc': 'Name Z–A',
  'size:desc': 'Largest first',
  'size:asc': 'Smallest first',
};

/**
 * One page of files under `pathPrefix` (the whole workspace when empty), at any depth, in the
 * order of `sort` (`key:order`, default newest first), whose names contain `q`.
 */
export async function listFiles({ pathPrefix, q, sort = 'created_at:desc', limit = 50, cursor } = {}) {
  const [key, order] = sort.split(':');
  const page = (want, after) => json('GET', '/files', {
    query: { path_prefix: pathPrefix || '/', include_all_sessions: 'true', sort: key, order, q, limit: want, cursor: after },
  });
  const first = await page(limit, cursor);
  if (!q) return first;
  // A name search examines a bounded window of the listing per request (SPEC §18 at 100 000
  // files), so a page may come back short, even empty, with a cursor: keep reading until the page
  // is full or the listing ends (bounded, so a rare name in a huge workspace still answers).
  const files = [...first.files];
  let next = first.next_cursor;
  for (let i = 0; i < SEARCH_FOLLOW_MAX && next && files.length < limit; i += 1) {
    const more = await page(limit - files.length, next);
    files.push(...more.files);
    next = more.next_cursor;
  }
  return { ...first, files, next_cursor: next };
}

/** Most extra requests one search page makes to fill itself (each examines up to 1 000 files). */
const SEARCH_FOLLOW_MAX = 120;

/** The immediate children of a folder: `{files, folders: [{path, file_count, size_bytes}], next_cursor}`. */
export function listChildren({ pathPrefix, limit = 1000, cursor } = {}) {
  return json('GET', '/files', {
    query: { path_prefix: pathPrefix || '/', include_all_sessions: 'true', delimiter: '/', limit, cursor },
  });
}

/** Every sub-folder of a folder (pages through the children, at most `max` pages). */
export async function listFolders(pathPrefix, max = 5) {
  const folders = [];
  let cursor;
  for (let i = 0; i < max; i += 1) {
    const page = await listChildren({ pathPrefix, cursor });
    folders.push(...(page.folders || []));
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return folders;
}

export const getFile = (id) => json('GET', fileUrl(id));
export const deleteFile = (id) => json('DELETE', fileUrl(id));
export const moveFile = (id, path, overwrite = false) => json('POST', fileUrl(id, '/move'), { body: { path, overwrite } });
export const versions = (id) => json('GET', fileUrl(id, '/versions'));
export const restore = (id, path) => json('POST', fileUrl(id, '/restore'), { body: path ? { path } : {} });
export const moveFolder = (from, to) => json('POST', '/folders/move', { body: { from, to } });
export const deleteFolder = (path) => json('DELETE', '/folders', { query: { path } });
export const listTrash = ({ limit, cursor } = {}) => json('GET', '/trash', { query: { limit, cursor } });
export const purge = (id) => json('DELETE', `/trash/${encodeURIComponent(id)}`);
export const emptyTrash = () => json('DELETE', '/trash');

/** A signed link: `{url, expires_at}`; the URL works without the header until it expires. */
export const createLink = (id, expiresIn = 600) => json('POST', fileUrl(id, '/link'), { query: { expires_in: expiresIn } });

/** A signed download URL that works without the header (for <img>, <video>, <a download>). */
export async function signedUrl(id, { disposition, expiresIn = 600 } = {}) {
  const link = await createLink(id, expiresIn);
  return disposition ? `${link.url}&disposition=${encodeURIComponent(disposition)}` : link.url;
}

/** A signed thumbnail URL (a signed download link's query on the thumbnail route), `size` px. */
export async function thumbnailUrl(id, size = 256) {
  const link = await createLink(id, 900);
  return `${link.url.replace('/download?', '/thumbnail?')}&size=${size}`;
}

/**
 * The first `maxBytes` of a file as text (with the bearer header), and whether the file is longer
 * than what came back: a 206 is cut only if Content-Range's total says so.
 */
export async function fetchTextStart(id, maxBytes = 65536) {
  const response = await request('GET', fileUrl(id, '/download'), {
    query: { disposition: 'inline' },
    headers: { Range: `bytes=0-${maxBytes - 1}` },
    accept: [206, 416],
  });
  if (response.status === 416) return { text: '', truncated: false, total: 0 }; // an empty file
  const text = await response.text();
  const range = /\/(\d+)\s*$/.exec(response.headers.get('Content-Range') || '');
  const total = range ? Number(range[1]) : Number(response.headers.get('Content-Length') || 0);
  const received = Number(/^bytes (\d+)-(\d+)/.exec(response.headers.get('Content-Range') || '')?.[2] ?? -1) + 1;
  const truncated = response.status === 206 && range !== null && received < total;
  return { text, truncated, total };
}

/**
 * Uploads one file. Fields go before the `file` part, as the server requires.
 * `onProgress(loaded, total)` is called from XMLHttpRequest upload progress events.
 */
export function uploadFile(file, { path, overwrite }, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    if (path) form.append('path', path);
    form.append('overwrite', overwrite ? 'true' : 'false');
    form.append('file', file, file.name);

    const xhr = new XMLHttpRequest();
    xhr.open('POST', `${BASE}/files`);
    xhr.setRequestHeader('Authorization', `Bearer ${getToken()}`);
    xhr.responseType = 'text';
    xhr.upload.addEventListener('progress', (event) => {
      onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    });
    xhr.addEventListener('load', () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(body);
        return;
      }
      if (xhr.status === 401) signalUnauthorized();
      reject(new ApiError(xhr.status, body?.error, body?.message || xhr.statusText));
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'network', 'The connection was closed before the server answered.')));
    xhr.addEventListener('abort', () => reject(new ApiError(0, 'aborted', 'The upload was cancelled.')));
    xhr.send(form);
  });
}

/** A message a person can act on, for any error from this module. */
export function describeError(err, { path } = {}) {
  if (!(err instanceof ApiError)) return `Something went wrong: ${err?.message ?? err}`;
  const detail = err.message ? ` (${err.message})` : '';
  switch (err.code) {
    case 'conflict':
      return `A file already exists at ${path || 'that path'}. Tick “Replace existing files” to overwrite it, or choose another folder.`;
    case 'quota_exceeded':
      return `Storage quota exceeded: there is not enough space left in your workspace. Delete some files and try again${detail}.`;
    case 'too_large':
      return `File too large: it is bigger than the server's size limit per file${detail}.`;
    case 'unauthorized':
      return 'Your token was refused or has expired. Sign in again.';
    case 'not_found':
      return 'That file no longer exists (it may have been deleted).';
    case 'network':
    case 'aborted':
      return err.message;
    default:
      if (err.status === 413) return `Too large${detail}.`;
      if (err.status === 409) return `Conflict${detail}.`;
      return `The server refused the request: ${err.code || err.status}${detail}.`;
  }
}
