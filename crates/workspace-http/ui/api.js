// The API client: bearer token from sessionStorage, JSON errors turned into ApiError, uploads
// through XMLHttpRequest so the progress bar follows real upload progress events.

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

async function request(method, path, { query, headers = {}, token = getToken() } = {}) {
  let response;
  try {
    response = await fetch(url(path, query), {
      method,
      headers: { Authorization: `Bearer ${token}`, ...headers },
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (err) {
    throw new ApiError(0, 'network', `The server did not answer (${err.message}).`);
  }
  if (!response.ok && response.status !== 206) throw await errorFrom(response);
  return response;
}

async function json(method, path, options) {
  const response = await request(method, path, options);
  return response.status === 204 ? null : response.json();
}

export const usage = (token) => json('GET', '/usage', { token });

export function listFiles({ pathPrefix, sessionId, includeAllSessions, limit, cursor } = {}) {
  return json('GET', '/files', {
    query: {
      path_prefix: pathPrefix,
      session_id: sessionId,
      include_all_sessions: includeAllSessions ? 'true' : undefined,
      limit,
      cursor,
    },
  });
}

export const getFile = (id) => json('GET', `/files/${encodeURIComponent(id)}`);
export const deleteFile = (id) => json('DELETE', `/files/${encodeURIComponent(id)}`);

/** A signed download URL that works without the header (for <img>, <video>, <a download>). */
export async function signedUrl(id, { disposition, expiresIn = 600 } = {}) {
  const link = await json('POST', `/files/${encodeURIComponent(id)}/link`, { query: { expires_in: expiresIn } });
  return disposition ? `${link.url}&disposition=${encodeURIComponent(disposition)}` : link.url;
}

/** The first `maxBytes` of a file as text (with the bearer header), and whether it was cut. */
export async function fetchTextStart(id, maxBytes = 65536) {
  const response = await request('GET', `/files/${encodeURIComponent(id)}/download`, {
    query: { disposition: 'inline' },
    headers: { Range: `bytes=0-${maxBytes - 1}` },
  });
  const text = await response.text();
  return { text, truncated: response.status === 206 };
}

/**
 * Uploads one file. Fields go before the `file` part, as the server requires.
 * `onProgress(loaded, total)` is called from XMLHttpRequest upload progress events.
 */
export function uploadFile(file, { path, sessionId, overwrite }, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    if (path) form.append('path', path);
    if (sessionId) form.append('session_id', sessionId);
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
