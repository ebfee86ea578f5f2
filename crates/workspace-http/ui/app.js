// Entry point: sign-in with a pasted token, the hash routes (#/files?path=…&q=…, #/trash,
// #/chat), and the live change feed while signed in.

import * as api from './api.js';
import { showChat } from './chat.js';
import { $, setStatus } from './dom.js';
import { startLive, stopLive } from './events.js';
import { showFiles } from './files.js';
import { showTrash } from './trash.js';

const VIEWS = ['signin', 'files', 'trash', 'chat'];
const TITLES = { signin: 'Sign in', files: 'Files', trash: 'Trash', chat: 'Chat' };

function show(view) {
  for (const name of VIEWS) $(`view-${name}`).hidden = name !== view;
  const signedIn = view !== 'signin';
  $('nav').hidden = !signedIn;
  $('who').hidden = !signedIn;
  for (const name of ['files', 'trash', 'chat']) {
    const link = $(`nav-${name}`);
    if (name === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${TITLES[view]} · Workspace`;
  document.body.dataset.view = view;
}

/** `#/files?path=/a` → `{ view: 'files', params }`. */
function parseHash() {
  const hash = location.hash.startsWith('#/') ? location.hash.slice(2) : '';
  const [name, query = ''] = hash.split('?');
  const view = ['files', 'trash', 'chat'].includes(name) ? name : 'files';
  return { view, params: new URLSearchParams(query) };
}

function route() {
  if (!api.getToken()) {
    stopLive();
    show('signin');
    $('token-input').focus();
    return;
  }
  startLive();
  const { view, params } = parseHash();
  show(view);
  if (view === 'files') showFiles(params);
  else if (view === 'trash') showTrash();
  else showChat();
}

function signOut(message) {
  api.clearToken();
  setStatus($('signin-status'), message || '', message ? 'error' : '');
  route();
}

function init() {
  $('signin-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = $('token-input').value.trim().replace(/^Bearer\s+/i, '');
    const statusEl = $('signin-status');
    if (!token) {
      setStatus(statusEl, 'Paste a token first.', 'error');
      return;
    }
    setStatus(statusEl, 'Checking…', 'info');
    try {
      await api.usage(token);
    } catch (err) {
      setStatus(statusEl, err.status === 401 ? 'That token was refused: it is invalid or has expired.' : api.describeError(err), 'error');
      return;
    }
    api.setToken(token);
    $('token-input').value = '';
    setStatus(statusEl, '');
    if (!location.hash.startsWith('#/')) {
      location.hash = '#/files'; // hashchange routes
      return;
    }
    route();
    $('main').focus();
  });
  $('sign-out').addEventListener('click', () => signOut());
  window.addEventListener('workspace:unauthorized', () => signOut('Your token was refused or has expired. Sign in again.'));
  window.addEventListener('hashchange', () => {
    if (!location.hash.startsWith('#/')) return; // e.g. the skip link's #main
    route();
    $('main').focus();
  });
  route();
}

init();
