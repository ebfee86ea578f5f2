// Entry point: sign-in with a pasted token, and the hash routes #/files and #/chat.

import * as api from './api.js';
import { showChat } from './chat.js';
import { $, setStatus } from './dom.js';
import { showFiles } from './files.js';

const VIEWS = ['signin', 'files', 'chat'];

function show(view) {
  for (const name of VIEWS) $(`view-${name}`).hidden = name !== view;
  const signedIn = view !== 'signin';
  $('nav').hidden = !signedIn;
  $('who').hidden = !signedIn;
  for (const name of ['files', 'chat']) {
    const link = $(`nav-${name}`);
    if (name === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${view === 'signin' ? 'Sign in' : view === 'files' ? 'Files' : 'Chat'} · Workspace`;
  document.body.dataset.view = view;
}

function route() {
  if (!api.getToken()) {
    show('signin');
    $('token-input').focus();
    return;
  }
  const view = location.hash === '#/chat' ? 'chat' : 'files';
  show(view);
  if (view === 'files') showFiles();
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
    if (location.hash !== '#/files' && location.hash !== '#/chat') location.hash = '#/files';
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
