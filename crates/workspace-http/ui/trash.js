// The trash view (SPEC §13): deleted files, most recent first, each with its purge date; restore
// (to its path, or to another when the path is taken), delete forever, and empty the trash.

import * as api from './api.js';
import { $, clear, confirmDialog, formatBytes, formatDate, h, setStatus } from './dom.js';

let wired = false;
let cursor = null;
let ticket = 0;

function status(message, kind) {
  setStatus($('trash-status'), message, kind);
}

function entry(file) {
  const restore = h('button', { type: 'button', class: 'small', 'aria-label': `Restore ${file.name}` }, 'Restore');
  restore.addEventListener('click', () => restoreEntry(file));
  const purge = h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete forever ${file.name}` }, 'Delete forever');
  purge.addEventListener('click', () => purgeEntry(file));
  return h('li', { class: 'item file trashed', dataset: { id: file.id } },
    h('span', { class: 'thumb', 'aria-hidden': 'true' }, h('span', { class: 'type-badge', text: (file.name.split('.').pop() || 'file').slice(0, 4).toUpperCase() })),
    h('div', { class: 'item-main' },
      h('span', { class: 'fname item-name', title: file.name }, h('span', { class: 'stem', text: file.name })),
      h('span', { class: 'item-meta' },
        h('span', { class: 'where', title: file.path, text: file.path }),
        h('span', { text: formatBytes(file.size_bytes) }),
        h('span', { text: `deleted ${formatDate(file.deleted_at)}` }),
        h('span', { text: `purged after ${formatDate(file.purge_at)}` }))),
    h('div', { class: 'item-actions' }, restore, purge));
}

async function load(more = false) {
  const mine = ++ticket;
  const list = $('trash-list');
  try {
    const page = await api.listTrash({ limit: 50, cursor: more ? cursor : undefined });
    if (mine !== ticket) return;
    if (!more) clear(list);
    for (const file of page.files) list.append(entry(file));
    cursor = page.next_cursor || null;
    $('trash-more').hidden = !cursor;
    const empty = $('trash-empty-state');
    empty.hidden = list.children.length > 0;
    empty.dataset.kind = 'empty';
    empty.textContent = 'The trash is empty.';
    $('trash-empty').disabled = list.children.length === 0;
  } catch (err) {
    if (mine !== ticket) return;
    clear(list);
    const empty = $('trash-empty-state');
    empty.hidden = false;
    empty.dataset.kind = 'error';
    empty.textContent = `The trash could not be loaded: ${api.describeError(err)}`;
  }
}

async function restoreEntry(file) {
  try {
    const restored = await api.restore(file.id);
    status(`Restored ${file.name} to ${restored.path}.`, 'ok');
  } catch (err) {
    if (err.status !== 409) {
      status(api.describeError(err), 'error');
      return;
    }
    // The path is taken: offer the same folder with a free-looking name.
    const dot = file.path.lastIndexOf('.');
    const slash = file.path.lastIndexOf('/');
    const alt = dot > slash + 1 ? `${file.path.slice(0, dot)} (restored)${file.path.slice(dot)}` : `${file.path} (restored)`;
    const ok = await confirmDialog(`A file already exists at ${file.path}. Restore this one as ${alt} instead?`, 'Restore there');
    if (!ok) {
      status(`Not restored: ${file.path} is taken.`, 'info');
      return;
    }
    try {
      const restored = await api.restore(file.id, alt);
      status(`Restored ${file.name} to ${restored.path}.`, 'ok');
    } catch (again) {
      status(api.describeError(again, { path: alt }), 'error');
    }
  }
  await load();
}

async function purgeEntry(file) {
  const ok = await confirmDialog(`Delete “${file.name}” (${file.path}) forever, with its versions? This cannot be undone.`, 'Delete forever');
  if (!ok) return;
  try {
    await api.purge(file.id);
    status(`${file.name} is gone for good.`, 'ok');
  } catch (err) {
    status(api.describeError(err), 'error');
  }
  await load();
}

async function emptyAll() {
  const ok = await confirmDialog('Delete every file in the trash forever, with their versions? This cannot be undone.', 'Empty trash');
  if (!ok) return;
  try {
    const result = await api.emptyTrash();
    status(`Emptied the trash (${result?.purged ?? 0} deleted for good).`, 'ok');
  } catch (err) {
    status(api.describeError(err), 'error');
  }
  await load();
}

let timer = null;

export function showTrash() {
  if (!wired) {
    wired = true;
    $('trash-empty').addEventListener('click', emptyAll);
    $('trash-more').addEventListener('click', () => load(true));
    window.addEventListener('workspace:change', () => {
      if ($('view-trash').hidden) return;
      clearTimeout(timer);
      timer = setTimeout(() => load(), 300);
    });
  }
  status('');
  load();
}
