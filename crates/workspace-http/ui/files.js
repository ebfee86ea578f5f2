// The files view: a folder tree, sessions and breadcrumbs; the listing of a folder (at any depth,
// newest first by default) with sort, name search and pages, as a list or a grid of thumbnails;
// selection with bulk delete and move; a details dialog per file (preview, download, share link,
// rename or move, versions and restore, delete); folder move and delete; upload with progress;
// usage; and live refresh from the change feed.

import * as api from './api.js';
import { $, clear, confirmDialog, formatBytes, formatDate, h, setStatus } from './dom.js';

const TEXT_TYPES = /^(text\/|application\/(json|xml|x-ndjson|yaml|x-yaml|toml|javascript)$)/;
const SORT_KEY = 'workspace.sort';
const VIEW_KEY = 'workspace.view';

const state = {
  folder: '/',
  q: '',
  sort: localStorage.getItem(SORT_KEY) in api.SORTS ? localStorage.getItem(SORT_KEY) : 'created_at:desc',
  view: localStorage.getItem(VIEW_KEY) === 'grid' ? 'grid' : 'list',
  limit: 25,
  cursor: null,
  previous: [],
  nextCursor: null,
  page: 1,
  files: [],
  folders: [],
  selected: new Map(),
  lastUsage: null,
  loading: 0,
  detail: null,
};

let wired = false;

function status(message, kind) {
  setStatus($('files-status'), message, kind);
}

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** `/a/b` + `c.txt` → `/a/b/c.txt`; the root joins without a double slash. */
export function joinPath(folder, name) {
  const base = folder.replace(/\/+$/, '');
  return `${base}/${name.replace(/^\/+/, '')}`;
}

function parentOf(path) {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function baseName(path) {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Normalises a typed folder: leading slash, no trailing slash, empty → `/`. */
export function normaliseFolder(input) {
  const trimmed = String(input ?? '').trim().replace(/\/+$/, '');
  if (!trimmed) return '/';
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}

/** The hash of the files view for a folder and a search. */
export function filesHash(folder, q = '') {
  const params = new URLSearchParams();
  if (folder && folder !== '/') params.set('path', folder);
  if (q) params.set('q', q);
  const qs = params.toString();
  return qs ? `#/files?${qs}` : '#/files';
}

/**
 * A file name as two spans, the stem and the extension, so a long name is cut in the middle of
 * the stem (CSS ellipsis) and keeps its extension visible.
 */
function nameNode(name, tag = 'span', attrs = {}) {
  const dot = name.lastIndexOf('.');
  const split = dot > 0 && name.length - dot <= 8;
  return h(tag, { ...attrs, class: `fname ${attrs.class ?? ''}`.trim(), title: name },
    h('span', { class: 'stem', text: split ? name.slice(0, dot) : name }),
    split ? h('span', { class: 'ext', text: name.slice(dot) }) : null);
}

/** A short type label for a file's icon: its extension, or the MIME family. */
function typeLabel(file) {
  const dot = file.name.lastIndexOf('.');
  if (dot > 0 && file.name.length - dot <= 5) return file.name.slice(dot + 1).toUpperCase();
  return (file.mime_type || 'file').split('/')[0].slice(0, 4).toUpperCase();
}

function isImage(file) {
  const mime = (file.mime_type || '').toLowerCase();
  return mime.startsWith('image/') && mime !== 'image/svg+xml';
}

// ---------------------------------------------------------------------------------------------
// Usage

export async function refreshUsage() {
  try {
    const u = await api.usage();
    state.lastUsage = u;
    const percent = u.limit_bytes > 0 ? Math.min(100, (u.used_bytes / u.limit_bytes) * 100) : 0;
    const bar = $('usage-bar');
    bar.setAttribute('aria-valuenow', percent.toFixed(0));
    bar.dataset.level = percent >= 90 ? 'high' : percent >= 70 ? 'mid' : 'low';
    $('usage-fill').style.width = `${percent}%`;
    const history = u.history_bytes ? ` (${formatBytes(u.history_bytes)} in versions and trash)` : '';
    $('usage-text').textContent =
      `${formatBytes(u.used_bytes)} of ${formatBytes(u.limit_bytes)} used · ${plural(u.file_count, 'file')}${history}`;
  } catch {
    $('usage-text').textContent = 'usage unavailable';
  }
}

// ---------------------------------------------------------------------------------------------
// Folder tree, sessions, breadcrumbs

function folderLink(path, label, { current = false, count } = {}) {
  return h('a', { href: filesHash(path), 'aria-current': current ? 'page' : false, class: 'tree-link', title: path },
    h('span', { class: 'folder-icon', 'aria-hidden': 'true' }),
    h('span', { class: 'tree-name', text: label }),
    count !== undefined
      ? h('span', { class: 'count' }, String(count), h('span', { class: 'visually-hidden', text: count === 1 ? ' file' : ' files' }))
      : null);
}

// Each redraw of the tree or the session list asks the server first and clears only then, and
// only the newest of overlapping redraws (the change feed and a navigation can start two) draws:
// clearing before the answer let two redraws both append, listing every folder twice.
const redraws = { tree: 0, sessions: 0 };

/** The tree: the root, and the sub-folders of each ancestor of the current folder, nested. */
async function renderTree() {
  const chain = ['/'];
  for (const segment of state.folder.split('/').filter(Boolean)) chain.push(joinPath(chain[chain.length - 1], segment));
  const mine = ++redraws.tree;
  let levels;
  try {
    levels = await Promise.all(chain.map((path) => api.listFolders(path, 2)));
  } catch {
    return;
  }
  if (mine !== redraws.tree) return;
  const tree = clear($('folder-tree'));
  const root = h('li', {}, folderLink('/', 'All files', { current: state.folder === '/' }));
  tree.append(root);
  let parent = root;
  levels.forEach((folders, depth) => {
    if (!folders.length) return;
    const list = h('ul');
    parent.append(list);
    for (const folder of folders) {
      const item = h('li', {}, folderLink(folder.path, baseName(folder.path), {
        current: folder.path === state.folder, count: folder.file_count,
      }));
      list.append(item);
      if (folder.path === chain[depth + 1]) parent = item;
    }
  });
}

async function renderSessions() {
  const mine = ++redraws.sessions;
  let folders = [];
  try {
    folders = await api.listFolders('/sessions', 2);
  } catch {
    folders = [];
  }
  if (mine !== redraws.sessions) return;
  const list = clear($('session-list'));
  if (!folders.length) {
    list.append(h('li', { class: 'hint', text: 'No session folders yet.' }));
    return;
  }
  for (const folder of folders) {
    list.append(h('li', {}, folderLink(folder.path, baseName(folder.path), {
      current: folder.path === state.folder, count: folder.file_count,
    })));
  }
}

function renderBreadcrumbs() {
  const ol = clear($('breadcrumbs'));
  const parts = state.folder.split('/').filter(Boolean);
  const crumb = (path, label, last) => h('li', {},
    last ? h('span', { 'aria-current': 'location', text: label }) : h('a', { href: filesHash(path), text: label }));
  ol.append(crumb('/', 'All files', parts.length === 0));
  let path = '';
  parts.forEach((part, i) => {
    path = `${path}/${part}`;
    ol.append(crumb(path, part, i === parts.length - 1));
  });
}

function renderScope() {
  const where = state.folder === '/' ? 'the whole workspace' : state.folder;
  const what = state.q ? `Files whose name contains “${state.q}”, in ${where}` : `Files in ${where}`;
  $('scope').textContent = `${what}, at any depth · ${api.SORTS[state.sort].toLowerCase()}`;
  $('upload-target').textContent = `Uploads go to ${state.folder === '/' ? '/' : state.folder}${$('upload-folder').value.trim() ? `/${$('upload-folder').value.trim().replace(/^\/+|\/+$/g, '')}` : ''}.`;
  $('filter-clear').hidden = !state.q && state.folder === '/';
}

// ---------------------------------------------------------------------------------------------
// Listing

function checkbox(label, checked, onChange) {
  const box = h('input', { type: 'checkbox', class: 'pick', 'aria-label': label });
  box.checked = checked;
  box.addEventListener('change', () => onChange(box.checked));
  return box;
}

function folderItem(folder) {
  const name = baseName(folder.path);
  const actions = h('div', { class: 'item-actions' },
    h('button', { type: 'button', class: 'small secondary', 'aria-label': `Move folder ${name}`, onClick: () => moveFolderDialog(folder.path) }, 'Move…'),
    h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete folder ${name}`, onClick: () => removeFolder(folder.path) }, 'Delete…'));
  return h('li', { class: 'item folder', dataset: { path: folder.path } },
    h('span', { class: 'pick-spacer', 'aria-hidden': 'true' }),
    h('a', { class: 'thumb folder-thumb', href: filesHash(folder.path), tabindex: '-1', 'aria-hidden': 'true' },
      h('span', { class: 'folder-icon big' })),
    h('div', { class: 'item-main' },
      h('a', { class: 'item-name', href: filesHash(folder.path), 'aria-label': `Open folder ${name}` }, nameNode(name)),
      h('span', { class: 'item-meta' }, `Folder · ${plural(folder.file_count, 'file')} · ${formatBytes(folder.size_bytes)}`)),
    actions);
}

function relativeFolder(file) {
  const parent = parentOf(file.path);
  if (parent === state.folder) return '';
  const base = state.folder === '/' ? '' : state.folder;
  return parent.startsWith(`${base}/`) ? parent.slice(base.length + 1) : parent;
}

/** A file's row; `shown` is the thumbnail its row already showed in this layout, if any. */
function fileItem(file, shown) {
  const thumb = h('button', { type: 'button', class: 'thumb', tabindex: '-1', 'aria-hidden': 'true', onClick: () => openDetails(file) },
    h('span', { class: 'type-badge', text: typeLabel(file) }));
  if (shown) showThumbnail(thumb, shown);
  else if (isImage(file)) loadThumbnail(thumb, file, state.view === 'grid');
  const where = relativeFolder(file);
  return h('li', { class: 'item file', dataset: { id: file.id } },
    checkbox(`Select ${file.name}`, state.selected.has(file.id), (on) => select(file, on)),
    thumb,
    h('div', { class: 'item-main' },
      nameNode(file.name, 'button', { type: 'button', class: 'item-name linkish', 'aria-label': `Open ${file.name}`, onClick: () => openDetails(file) }),
      h('span', { class: 'item-meta' },
        where ? h('span', { class: 'where', title: file.path, text: `in ${where}` }) : null,
        h('span', { class: 'size', title: `${file.size_bytes} bytes`, text: formatBytes(file.size_bytes) }),
        h('time', { datetime: file.created_at, text: formatDate(file.created_at) }))),
    h('div', { class: 'item-actions' },
      h('button', { type: 'button', class: 'small secondary', 'aria-label': `Download ${file.name}`, onClick: () => download(file) }, 'Download'),
      h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete ${file.name}`, onClick: () => remove(file) }, 'Delete')));
}

/** An image's thumbnail (SPEC §17), in both layouts, through a signed link so `<img>` can load it. */
async function loadThumbnail(holder, file, grid) {
  try {
    const src = await api.thumbnailUrl(file.id, grid ? 256 : 96);
    const img = h('img', { src, alt: '', loading: 'lazy', decoding: 'async' });
    img.addEventListener('error', () => img.remove(), { once: true });
    showThumbnail(holder, img);
  } catch {
    // The type badge stays.
  }
}

/** Puts `img` in `holder`, which shows it over the type badge once it has loaded. */
function showThumbnail(holder, img) {
  if (img.complete && img.naturalWidth > 0) holder.classList.add('has-image');
  else img.addEventListener('load', () => holder.classList.add('has-image'), { once: true });
  holder.append(img);
}

function emptyState(kind, message, hint, action) {
  const box = clear($('files-empty'));
  box.dataset.kind = kind;
  box.append(h('p', { class: 'empty-title', text: message }));
  if (hint) box.append(h('p', { class: 'hint', text: hint }));
  if (action) box.append(h('button', { type: 'button', class: 'secondary', onClick: action.run }, action.label));
  box.hidden = false;
}

export async function loadFiles() {
  const ticket = ++state.loading;
  const listing = $('listing');
  listing.setAttribute('aria-busy', 'true');
  try {
    const [page, folders] = await Promise.all([
      api.listFiles({ pathPrefix: state.folder, q: state.q, sort: state.sort, limit: state.limit, cursor: state.cursor }),
      state.q || state.cursor ? Promise.resolve([]) : api.listFolders(state.folder, 2),
    ]);
    if (ticket !== state.loading) return;
    if (page.files.length === 0 && state.previous.length > 0) {
      // The last file of a later page went away: show the page before.
      state.cursor = state.previous.pop();
      state.page -= 1;
      await loadFiles();
      return;
    }
    state.files = page.files;
    state.folders = folders;
    render();
    state.nextCursor = page.next_cursor || null;
    $('page-next').disabled = !state.nextCursor;
    $('page-prev').disabled = state.previous.length === 0;
    $('page-info').textContent = `Page ${state.page} · ${plural(page.files.length, 'file')}`;
    $('files-empty').hidden = true;
    if (page.files.length === 0 && folders.length === 0) {
      if (state.q) {
        emptyState('no-match', `No file name contains “${state.q}” in ${state.folder === '/' ? 'the workspace' : state.folder}.`,
          'Search looks at file names only (not folders), ignores case, and any part of a name matches. Try a shorter part, or search everywhere.',
          { label: 'Search the whole workspace', run: () => { location.hash = filesHash('/', state.q); } });
      } else if (state.folder === '/') {
        emptyState('empty', 'No files yet.', 'Upload files below, or let an agent save one: it appears here at once.');
      } else {
        emptyState('empty', `The folder ${state.folder} is empty.`, 'Its files may have been moved or deleted; upload files below to fill it.',
          { label: 'Back to all files', run: () => { location.hash = filesHash('/'); } });
      }
    }
  } catch (err) {
    if (ticket !== state.loading) return;
    clear($('file-list'));
    $('page-info').textContent = '';
    $('page-next').disabled = true;
    emptyState('error', `The files could not be loaded: ${api.describeError(err)}`, null, { label: 'Try again', run: () => loadFiles() });
  } finally {
    if (ticket === state.loading) listing.setAttribute('aria-busy', 'false');
  }
}

function render() {
  const list = $('file-list');
  // A file id is one version, whose thumbnail never changes: the thumbnails shown move into the
  // new rows, so a refresh (after every change in the feed) neither blanks nor reloads them.
  const shown = new Map();
  if (list.dataset.view === state.view) {
    for (const item of list.querySelectorAll('.item.file')) {
      const img = item.querySelector('.thumb img');
      if (img) shown.set(item.dataset.id, img);
    }
  }
  clear(list);
  list.dataset.view = state.view;
  for (const folder of state.folders) list.append(folderItem(folder));
  for (const file of state.files) list.append(fileItem(file, shown.get(file.id)));
  syncSelection();
}

function resetPages() {
  state.cursor = null;
  state.previous = [];
  state.page = 1;
}

/** Reloads everything the view shows (after a change here or in the feed). */
export async function refreshAll() {
  await Promise.all([loadFiles(), refreshUsage(), renderTree(), renderSessions()]);
}

// ---------------------------------------------------------------------------------------------
// Selection and bulk actions

function select(file, on) {
  if (on) state.selected.set(file.id, file);
  else state.selected.delete(file.id);
  syncSelection();
}

function syncSelection() {
  // A file that left the listing stays selected only while it is still shown.
  const shown = new Set(state.files.map((f) => f.id));
  for (const id of state.selected.keys()) if (!shown.has(id)) state.selected.delete(id);
  const n = state.selected.size;
  $('selection-bar').hidden = n === 0;
  $('selection-count').textContent = `${plural(n, 'file')} selected`;
  const all = $('select-all');
  all.checked = n > 0 && n === state.files.length;
  all.indeterminate = n > 0 && n < state.files.length;
  all.disabled = state.files.length === 0;
  for (const box of document.querySelectorAll('#file-list .item.file .pick')) {
    box.checked = state.selected.has(box.closest('.item').dataset.id);
  }
}

async function bulkDelete() {
  const files = [...state.selected.values()];
  if (!files.length) return;
  const ok = await confirmDialog(`Delete ${plural(files.length, 'file')}? They go to the trash, where you can restore them.`, 'Delete');
  if (!ok) return;
  let done = 0;
  const failed = [];
  for (const file of files) {
    try {
      await api.deleteFile(file.id);
      done += 1;
    } catch (err) {
      failed.push(`${file.name}: ${api.describeError(err)}`);
    }
  }
  state.selected.clear();
  status(failed.length ? `Deleted ${done}; not deleted: ${failed.join('; ')}` : `Deleted ${plural(done, 'file')}.`, failed.length ? 'error' : 'ok');
  await refreshAll();
}

/** Asks for a path in the move dialog; `submit(value, overwrite)` returns an error message or null. */
function pathDialog({ title, text, label, value, okLabel = 'Move', overwrite = true }, submit) {
  const dialog = $('move-dialog');
  $('move-title').textContent = title;
  $('move-text').textContent = text;
  $('move-label').textContent = label;
  $('move-ok').textContent = okLabel;
  const input = $('move-input');
  input.value = value;
  $('move-overwrite').checked = false;
  $('move-overwrite').closest('.field').hidden = !overwrite;
  setStatus($('move-status'), '');
  const form = $('move-form');
  return new Promise((resolve) => {
    const finish = (result) => {
      form.removeEventListener('submit', onSubmit);
      $('move-cancel').removeEventListener('click', onCancel);
      dialog.removeEventListener('cancel', onCancel);
      dialog.close();
      resolve(result);
    };
    const onSubmit = async (event) => {
      event.preventDefault();
      const v = input.value.trim();
      if (!v) {
        setStatus($('move-status'), 'Type a path first.', 'error');
        return;
      }
      $('move-ok').disabled = true;
      const error = await submit(v, $('move-overwrite').checked);
      $('move-ok').disabled = false;
      if (error) setStatus($('move-status'), error, 'error');
      else finish(true);
    };
    const onCancel = (event) => {
      event?.preventDefault?.();
      finish(false);
    };
    form.addEventListener('submit', onSubmit);
    $('move-cancel').addEventListener('click', onCancel);
    dialog.addEventListener('cancel', onCancel);
    dialog.showModal();
    input.focus();
    input.select();
  });
}

async function bulkMove() {
  const files = [...state.selected.values()];
  if (!files.length) return;
  await pathDialog({
    title: `Move ${plural(files.length, 'file')}`,
    text: files.map((f) => f.name).join(', '),
    label: 'Destination folder',
    value: state.folder,
  }, async (value, overwrite) => {
    const dest = normaliseFolder(value);
    const failed = [];
    let moved = 0;
    for (const file of files) {
      const target = joinPath(dest, file.name);
      try {
        await api.moveFile(file.id, target, overwrite);
        moved += 1;
        state.selected.delete(file.id);
      } catch (err) {
        failed.push(api.describeError(err, { path: target }));
      }
    }
    if (failed.length) return `${moved} moved; ${failed.length} not: ${failed.join(' ')}`;
    status(`Moved ${plural(moved, 'file')} to ${dest}.`, 'ok');
    return null;
  });
  await refreshAll();
}

async function moveFolderDialog(from) {
  const moved = await pathDialog({
    title: 'Move or rename folder',
    text: `Every file under ${from} moves, with its versions, in one step (all or nothing).`,
    label: 'New folder path',
    value: from,
    overwrite: false,
  }, async (value) => {
    const to = normaliseFolder(value);
    if (to === from) return 'That is where the folder already is.';
    try {
      const result = await api.moveFolder(from, to);
      status(`Moved ${plural(result.files, 'file')} from ${from} to ${to}.`, 'ok');
      return null;
    } catch (err) {
      return api.describeError(err, { path: to });
    }
  });
  if (moved) await refreshAll();
}

async function removeFolder(path) {
  const ok = await confirmDialog(`Delete the folder ${path} and every file in it? They go to the trash, where you can restore them.`, 'Delete folder');
  if (!ok) return;
  try {
    const result = await api.deleteFolder(path);
    status(`Moved ${plural(result.files, 'file')} from ${path} to the trash.`, 'ok');
  } catch (err) {
    status(api.describeError(err), 'error');
  }
  if (state.folder === path || state.folder.startsWith(`${path}/`)) location.hash = filesHash(parentOf(path));
  else await refreshAll();
}

// ---------------------------------------------------------------------------------------------
// Per-file actions

async function download(file) {
  try {
    const href = await api.signedUrl(file.id, { disposition: 'attachment', expiresIn: 120 });
    const a = h('a', { href, download: file.name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    status(`Downloading ${file.name}…`, 'info');
  } catch (err) {
    status(api.describeError(err), 'error');
  }
}

async function remove(file) {
  const ok = await confirmDialog(`Delete “${file.name}” at ${file.path}? It goes to the trash, where you can restore it; chats that show it show a placeholder meanwhile.`);
  if (!ok) {
    status('Nothing deleted.', 'info');
    return false;
  }
  try {
    await api.deleteFile(file.id);
    status(`Deleted ${file.name}.`, 'ok');
  } catch (err) {
    status(api.describeError(err), 'error');
  }
  await refreshAll();
  return true;
}

function detailButton(label, onClick, cls = 'secondary') {
  return h('button', { type: 'button', class: `small ${cls}`, onClick }, label);
}

function panel(title, ...children) {
  const box = clear($('preview-panel'));
  box.append(h('h3', { text: title }), ...children);
  return box;
}

function sharePanel(file) {
  const choice = h('select', { id: 'share-expiry' },
    h('option', { value: '600', text: '10 minutes' }),
    h('option', { value: '3600', text: '1 hour', selected: true }),
    h('option', { value: '86400', text: '1 day' }),
    h('option', { value: '604800', text: '7 days' }));
  const out = h('input', { id: 'share-url', type: 'text', readonly: true, 'aria-label': 'Share link', placeholder: 'No link yet' });
  const note = h('p', { class: 'status', role: 'status' });
  const copy = h('button', { type: 'button', class: 'small secondary', disabled: true }, 'Copy link');
  const create = h('button', { type: 'button', class: 'small' }, 'Create link');
  create.addEventListener('click', async () => {
    try {
      const link = await api.createLink(file.id, Number(choice.value));
      out.value = new URL(`${link.url}&disposition=attachment`, location.origin).href;
      copy.disabled = false;
      setStatus(note, `Anyone with this link can download ${file.name} until ${formatDate(new Date(link.expires_at * 1000).toISOString())}.`, 'info');
      out.select();
    } catch (err) {
      setStatus(note, api.describeError(err), 'error');
    }
  });
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(out.value);
      setStatus(note, 'Link copied.', 'ok');
    } catch {
      out.select();
      setStatus(note, 'Copying was refused by the browser: the link is selected, copy it with Ctrl+C.', 'info');
    }
  });
  panel('Share link',
    h('div', { class: 'inline-fields' }, h('label', { for: 'share-expiry', text: 'Expires after' }), choice, create),
    h('div', { class: 'inline-fields' }, out, copy), note);
}

function renamePanel(file) {
  const input = h('input', { id: 'rename-input', type: 'text', value: file.path, autocomplete: 'off', spellcheck: 'false' });
  const note = h('p', { class: 'status', role: 'alert' });
  const form = h('form', { class: 'inline-fields' },
    h('label', { for: 'rename-input', text: 'New path' }), input,
    h('button', { type: 'submit', class: 'small' }, 'Save'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const target = input.value.trim();
    if (!target || target === file.path) {
      setStatus(note, 'Type a new name or path first.', 'error');
      return;
    }
    try {
      const moved = await api.moveFile(file.id, target.startsWith('/') ? target : joinPath(parentOf(file.path), target));
      setStatus(note, `Moved to ${moved.path}.`, 'ok');
      status(`Moved ${file.name} to ${moved.path}.`, 'ok');
      await refreshAll();
      showDetails(moved);
    } catch (err) {
      setStatus(note, api.describeError(err, { path: target }), 'error');
    }
  });
  panel('Rename or move', form, note,
    h('p', { class: 'hint', text: 'A name without a leading / stays in the same folder; its versions move with it.' }));
  input.focus();
}

async function versionsPanel(file) {
  const list = h('ol', { class: 'versions', 'aria-label': `Versions of ${file.name}` });
  const note = h('p', { class: 'status', role: 'status' });
  panel('Versions', list, note);
  try {
    const { versions } = await api.versions(file.id);
    for (const v of versions) {
      const item = h('li', { dataset: { id: v.id } },
        h('span', { class: 'version-label', text: `Version ${v.version}${v.is_current ? ' (current)' : ''}` }),
        h('span', { class: 'item-meta', text: `${formatBytes(v.size_bytes)} · ${formatDate(v.created_at)} · ${v.source}` }));
      if (!v.is_current) {
        item.append(h('button', {
          type: 'button', class: 'small secondary', 'aria-label': `Restore version ${v.version}`,
          onClick: async () => {
            try {
              const restored = await api.restore(v.id);
              status(`Version ${v.version} of ${file.name} is current again (as version ${restored.version}).`, 'ok');
              await refreshAll();
              await showDetails(restored);
              await versionsPanel(restored);
            } catch (err) {
              setStatus(note, api.describeError(err), 'error');
            }
          },
        }, 'Restore'));
      }
      list.append(item);
    }
    if (versions.length <= 1) setStatus(note, 'Only one version: an overwrite keeps the previous content here.', 'info');
  } catch (err) {
    setStatus(note, api.describeError(err), 'error');
  }
}

async function copyRef(file) {
  try {
    await navigator.clipboard.writeText(file.uri);
    status(`Copied ${file.uri}`, 'ok');
  } catch {
    status(`Reference: ${file.uri}`, 'info');
  }
}

function openDetails(file) {
  $('preview-dialog').showModal();
  showDetails(file);
}

/** Fills the details dialog: metadata, actions and the preview. */
async function showDetails(file) {
  state.detail = file;
  const body = clear($('preview-body'));
  clear($('preview-panel'));
  $('preview-title').textContent = file.name;
  const actions = clear($('preview-actions'));
  actions.append(
    detailButton('Download', () => download(file), ''),
    detailButton('Share link…', () => sharePanel(file)),
    detailButton('Rename or move…', () => renamePanel(file)),
    detailButton('Versions', () => versionsPanel(file)),
    detailButton('Copy reference', () => copyRef(file)),
    detailButton('Delete…', async () => {
      if (await remove(file)) $('preview-dialog').close();
    }, 'danger'));
  body.append(h('dl', { class: 'meta' },
    h('dt', { text: 'Path' }), h('dd', { text: file.path }),
    h('dt', { text: 'Type' }), h('dd', { text: file.mime_type }),
    h('dt', { text: 'Size' }), h('dd', { text: `${formatBytes(file.size_bytes)} (${file.size_bytes} bytes)` }),
    h('dt', { text: 'Created' }), h('dd', { text: `${formatDate(file.created_at)} · version ${file.version} · ${file.source}` }),
    h('dt', { text: 'Reference' }), h('dd', {}, h('code', { text: file.uri }))));
  const stage = h('div', { class: 'preview-stage', text: 'Loading preview…' });
  body.append(stage);
  const mime = (file.mime_type || '').toLowerCase();
  try {
    if (file.size_bytes === 0) {
      clear(stage).append(h('p', { class: 'empty-file', text: 'This file is empty (0 bytes).' }));
    } else if (isImage(file)) {
      const src = await api.signedUrl(file.id, { disposition: 'inline' });
      const img = h('img', { src, alt: `Preview of ${file.name}` });
      img.addEventListener('error', () => { stage.textContent = 'The image could not be displayed.'; }, { once: true });
      clear(stage).append(img);
    } else if (mime.startsWith('video/') || mime.startsWith('audio/')) {
      const src = await api.signedUrl(file.id, { disposition: 'inline' });
      const tag = mime.startsWith('video/') ? 'video' : 'audio';
      clear(stage).append(h(tag, { src, controls: true, preload: 'metadata', 'aria-label': `Preview of ${file.name}` }));
    } else if (TEXT_TYPES.test(mime) || mime === 'text/markdown') {
      const { text, truncated, total } = await api.fetchTextStart(file.id);
      clear(stage).append(h('pre', { class: 'text-preview', tabindex: '0', 'aria-label': `Contents of ${file.name}`, text }));
      if (truncated) {
        stage.append(h('p', { class: 'hint truncated', text: `Only the first 64 KiB of ${formatBytes(total)} are shown; download the file for the rest.` }));
      }
    } else {
      clear(stage).append(h('p', { text: 'No preview for this type of file.' }),
        h('button', { type: 'button', onClick: () => download(file) }, 'Download'));
    }
  } catch (err) {
    stage.textContent = api.describeError(err);
  }
}

// ---------------------------------------------------------------------------------------------
// Upload

function targetPath(file) {
  const sub = $('upload-folder').value.trim().replace(/^\/+|\/+$/g, '');
  return joinPath(sub ? joinPath(state.folder, sub) : state.folder, file.name);
}

async function uploadOne(file) {
  const path = targetPath(file);
  const progress = h('progress', { max: '100', value: '0', 'aria-label': `Upload progress of ${file.name}` });
  const percent = h('span', { class: 'percent', text: '0%' });
  const message = h('span', { class: 'upload-message', text: `Uploading ${formatBytes(file.size)}…` });
  const item = h('li', { class: 'upload-item', dataset: { state: 'uploading', events: '0' } },
    nameNode(file.name, 'span', { class: 'upload-name' }), progress, percent, message);
  $('upload-list').prepend(item);

  const update = (value) => {
    progress.value = value;
    percent.textContent = `${value}%`;
  };
  try {
    const info = await api.uploadFile(file, { path, overwrite: $('upload-overwrite').checked }, (loaded, total) => {
      item.dataset.events = String(Number(item.dataset.events) + 1);
      update(total > 0 ? Math.min(100, Math.round((loaded / total) * 100)) : 0);
    });
    update(100);
    item.dataset.state = 'done';
    message.textContent = `Uploaded to ${info.path}`;
    return true;
  } catch (err) {
    item.dataset.state = 'error';
    item.classList.add('error');
    percent.textContent = 'failed';
    let text = api.describeError(err, { path });
    if (err.status === 0 && state.lastUsage && file.size > state.lastUsage.limit_bytes - state.lastUsage.used_bytes) {
      text = `Storage quota exceeded: ${file.name} (${formatBytes(file.size)}) does not fit in the space left. Delete some files and try again.`;
    }
    message.textContent = text;
    message.setAttribute('role', 'alert');
    return false;
  }
}

export async function uploadFiles(files) {
  const list = Array.from(files || []);
  if (!list.length) return;
  status(`Uploading ${plural(list.length, 'file')}…`, 'info');
  let ok = 0;
  for (const file of list) {
    if (await uploadOne(file)) ok += 1;
  }
  const failed = list.length - ok;
  status(failed ? `${ok} uploaded, ${failed} failed: see the messages below.` : `${ok} uploaded.`, failed ? 'error' : 'ok');
  await refreshAll();
}

// ---------------------------------------------------------------------------------------------

function setView(view) {
  state.view = view;
  localStorage.setItem(VIEW_KEY, view);
  $('view-list').setAttribute('aria-pressed', String(view === 'list'));
  $('view-grid').setAttribute('aria-pressed', String(view === 'grid'));
  render();
}

let changeTimer = null;

/** A change arrived from the feed: refresh what is shown, at most every 300 ms. */
function onChange() {
  if ($('view-files').hidden) return;
  clearTimeout(changeTimer);
  changeTimer = setTimeout(() => refreshAll(), 300);
}

function wire() {
  const sort = $('sort');
  for (const [value, label] of Object.entries(api.SORTS)) sort.append(h('option', { value, text: label }));
  sort.value = state.sort;
  sort.addEventListener('change', () => {
    state.sort = sort.value;
    localStorage.setItem(SORT_KEY, state.sort);
    resetPages();
    renderScope();
    loadFiles();
  });
  $('view-list').addEventListener('click', () => setView('list'));
  $('view-grid').addEventListener('click', () => setView('grid'));
  setView(state.view);
  $('page-size').addEventListener('change', () => {
    state.limit = Number($('page-size').value) || 25;
    resetPages();
    loadFiles();
  });
  $('filter-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const hash = filesHash(normaliseFolder($('filter-folder').value), $('filter-q').value.trim());
    if (location.hash === hash) {
      resetPages();
      loadFiles();
    } else {
      location.hash = hash;
    }
  });
  $('filter-clear').addEventListener('click', () => {
    location.hash = filesHash('/');
  });
  $('select-all').addEventListener('change', (event) => {
    for (const file of state.files) {
      if (event.target.checked) state.selected.set(file.id, file);
      else state.selected.delete(file.id);
    }
    syncSelection();
  });
  $('bulk-delete').addEventListener('click', bulkDelete);
  $('bulk-move').addEventListener('click', bulkMove);
  $('bulk-clear').addEventListener('click', () => {
    state.selected.clear();
    syncSelection();
  });
  $('page-next').addEventListener('click', () => {
    if (!state.nextCursor) return;
    state.previous.push(state.cursor);
    state.cursor = state.nextCursor;
    state.page += 1;
    loadFiles();
  });
  $('page-prev').addEventListener('click', () => {
    if (!state.previous.length) return;
    state.cursor = state.previous.pop();
    state.page -= 1;
    loadFiles();
  });
  $('upload-folder').addEventListener('input', renderScope);
  $('upload-input').addEventListener('change', async (event) => {
    const files = Array.from(event.target.files || []);
    event.target.value = '';
    await uploadFiles(files);
  });
  const zone = $('drop-zone');
  const stop = (event) => {
    event.preventDefault();
    event.stopPropagation();
  };
  for (const type of ['dragenter', 'dragover']) {
    zone.addEventListener(type, (event) => {
      stop(event);
      zone.classList.add('dragging');
    });
  }
  zone.addEventListener('dragleave', (event) => {
    stop(event);
    if (!zone.contains(event.relatedTarget)) zone.classList.remove('dragging');
  });
  zone.addEventListener('drop', (event) => {
    stop(event);
    zone.classList.remove('dragging');
    uploadFiles(event.dataTransfer?.files);
  });
  // A file dropped outside the zone must not make the browser navigate away.
  window.addEventListener('dragover', (event) => event.preventDefault());
  window.addEventListener('drop', (event) => event.preventDefault());
  window.addEventListener('workspace:change', onChange);
  // On a phone the folder panel starts folded so the files come first.
  if (window.matchMedia('(max-width: 720px)').matches) $('sidebar').open = false;
}

/** Called each time the files view is shown, with the hash's `path` and `q`. */
export function showFiles(params = new URLSearchParams()) {
  if (!wired) {
    wire();
    wired = true;
  }
  const folder = normaliseFolder(params.get('path') || '/');
  const q = (params.get('q') || '').trim();
  if (folder !== state.folder || q !== state.q) state.selected.clear();
  state.folder = folder;
  state.q = q;
  // The form shows what is applied; typing changes nothing until Apply or Enter.
  $('filter-q').value = q;
  $('filter-folder').value = folder === '/' ? '' : folder;
  resetPages();
  renderBreadcrumbs();
  renderScope();
  refreshAll();
}

