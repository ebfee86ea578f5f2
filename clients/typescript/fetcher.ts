// The fetch function orval's generated client calls (its `mutator`): prefixes the server's base
// URL, adds the bearer token, and reads each body as its route types it. Downloads are bytes
// (`Blob`) whatever their media type, so a JSON or text file is never parsed; error bodies and
// every other JSON answer are parsed; `text/*` answers (health, metrics) are strings.
// `credentials: 'omit'` in a call's options sends no token (a signed link carries its own proof).

export interface ClientConfig {
  /** e.g. `http://127.0.0.1:8080`, no trailing slash. */
  baseUrl: string;
  /** A bearer JWT whose `sub` is the user. */
  token?: string;
}

let config: ClientConfig = { baseUrl: '' };

export function configure(next: ClientConfig): void {
  config = next;
}

const NO_BODY = new Set([204, 205, 304]);

export const customFetch = async <T>(url: string, options: RequestInit): Promise<T> => {
  const headers = new Headers(options.headers);
  if (config.token !== undefined && options.credentials !== 'omit' && !headers.has('Authorization')) {
    headers.set('Authorization', `Bearer ${config.token}`);
  }
  const response = await fetch(`${config.baseUrl}${url}`, { ...options, headers, redirect: 'manual' });
  const type = response.headers.get('content-type') ?? '';
  const path = url.split('?')[0] ?? url;
  let data: unknown;
  if (NO_BODY.has(response.status) || (response.status >= 300 && response.status < 400)) {
    data = undefined;
  } else if (path.endsWith('/download') && response.ok) {
    data = await response.blob();
  } else if (/^application\/([\w.+-]+\+)?json/.test(type)) {
    data = await response.json();
  } else if (type.startsWith('text/')) {
    data = await response.text();
  } else {
    data = await response.blob();
  }
  return { data, status: response.status, headers: response.headers } as T;
};
