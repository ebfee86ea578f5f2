// The files view: list with filters and pages, upload with progress, preview, download, delete,
// and the usage bar.

import * as api from './api.js';
import { $, clear, confirmDialog, formatBytes, formatDate, h, setStatus } from './dom.js';

const TEXT_TYPES = /^(text\/|application\/(json|xml|x-ndjson|yaml|x-yaml|toml|javascript)$)/;

const state = {
  cursor: null,
  previous: [],
  nextCursor: null,
  page: 1,
  lastUsage: null,
  loading: 0,
};

let wired = false;

function filters() {
  return {
    sessionId: $('filter-session').value.trim(),
    pathPrefix: $('filter-prefix').value.trim(),
    includeAllSessions: $('filter-all').checked,
    limit: Number($('filter-limit').value) || 25,
  };
}

function status(message, kind) {
  setStatus($('files-status'), message, kind);
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
    $('usage-text').textContent =
      `${formatBytes(u.used_bytes)} of ${formatBytes(u.limit_bytes)} used · ${u.file_count} file${u.file_count === 1 ? '' : 's'}`;
  } catch (err) {
    $('usage-text').textContent = 'usage unavailable';
  }
}

// ---------------------------------------------------------------------------------------------
// List

function actionButton(label, name, onClick, extra = {}) {
  return h('button', { type: 'button', class: `small ${extra.class ?? 'secondary'}`, 'aria-label': `${label} ${name}`, onClick }, label);
}

function row(file) {
  return h('tr', { dataset: { id: file.id } },
    h('td', { class: 'name' }, h('span', { class: 'file-name', text: file.name, title: file.uri })),
    h('td', { class: 'path' }, h('span', { text: file.path })),
    h('td', { class: 'num', text: formatBytes(file.size_bytes), title: `${file.size_bytes} bytes` }),
    h('td', { class: 'type', text: file.mime_type }),
    h('td', { class: 'date' }, h('time', { datetime: file.created_at, text: formatDate(file.created_at) })),
    h('td', { class: 'row-actions' },
      actionButton('Preview', file.name, () => preview(file)),
      actionButton('Download', file.name, () => download(file)),
      actionButton('Copy reference', file.name, () => copyRef(file)),
      actionButton('Delete', file.name, () => remove(file), { class: 'danger' })),
  );
}

export async function loadFiles() {
  const f = filters();
  const ticket = ++state.loading;
  $('files-table').setAttribute('aria-busy', 'true');
  try {
    const page = await api.listFiles({ ...f, cursor: state.cursor });
    if (ticket !== state.loading) return;
    const body = clear($('files-body'));
    for (const file of page.files) body.append(row(file));
    $('files-empty').hidden = page.files.length > 0;
    state.nextCursor = page.next_cursor || null;
    $('page-next').disabled = !state.nextCursor;
    $('page-prev').disabled = state.previous.length === 0;
    $('page-info').textContent = `Page ${state.page} · ${page.files.length} file${page.files.length === 1 ? '' : 's'}`;
    if (page.files.length === 0 && state.previous.length > 0) {
      // The last file of a later page went away: show the page before.
      state.cursor = state.previous.pop();
      state.page -= 1;
      await loadFiles();
    }
  } catch (err) {
    if (ticket === state.loading) status(api.describeError(err), 'error');
  } finally {
    if (ticket === state.loading) $('files-table').removeAttribute('aria-busy');
  }
}

function resetPages() {
  state.cursor = null;
  state.previous = [];
  state.page = 1;
}

// ---------------------------------------------------------------------------------------------
// Row actions

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

async function copyRef(file) {
  try {
    await navigator.clipboard.writeText(file.uri);
    status(`Copied ${file.uri}`, 'ok');
  } catch {
    status(`Reference: ${file.uri}`, 'info');
  }
}

async function remove(file) {
  const ok = await confirmDialog(`Delete “${file.name}” at ${file.path}? It disappears from the workspace and from chats that show it.`);
  if (!ok) {
    status('Nothing deleted.', 'info');
    return;
  }
  try {
    await api.deleteFile(file.id);
    status(`Deleted ${file.name}.`, 'ok');
  } catch (err) {
    status(api.describeError(err), 'error');
  }
  await Promise.all([loadFiles(), refreshUsage()]);
}

async function preview(file) {
  const dialog = $('preview-dialog');
  const body = clear($('preview-body'));
  $('preview-title').textContent = file.name;
  body.append(h('dl', { class: 'meta' },
    h('dt', { text: 'Path' }), h('dd', { text: file.path }),
    h('dt', { text: 'Type' }), h('dd', { text: file.mime_type }),
    h('dt', { text: 'Size' }), h('dd', { text: `${formatBytes(file.size_bytes)} (${file.size_bytes} bytes)` }),
    h('dt', { text: 'Reference' }), h('dd', {}, h('code', { text: file.uri }))));
  const stage = h('div', { class: 'preview-stage', text: 'Loading preview…' });
  body.append(stage);
  dialog.showModal();
  const mime = (file.mime_type || '').toLowerCase();
  try {
    if (mime.startsWith('image/') && mime !== 'image/svg+xml') {
      const src = await api.signedUrl(file.id, { disposition: 'inline' });
      const img = h('img', { src, alt: `Preview of ${file.name}` });
      img.addEventListener('error', () => { stage.textContent = 'The image could not be displayed.'; }, { once: true });
      clear(stage).append(img);
    } else if (mime.startsWith('video/') || mime.startsWith('audio/')) {
      const src = await api.signedUrl(file.id, { disposition: 'inline' });
      const tag = mime.startsWith('video/') ? 'video' : 'audio';
      clear(stage).append(h(tag, { src, controls: true, preload: 'metadata', 'aria-label': `Preview of ${file.name}` }));
    } else if (TEXT_TYPES.test(mime) || mime === 'text/markdown' || file.size_bytes === 0) {
      const { text, truncated } = await api.fetchTextStart(file.id);
      clear(stage).append(h('pre', { class: 'text-preview', tabindex: '0', 'aria-label': `Contents of ${file.name}`, text }));
      if (truncated) stage.append(h('p', { class: 'hint', text: 'Only the first 64 KiB are shown; download the file for the rest.' }));
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
  const folder = $('upload-folder').value.trim().replace(/\/+$/, '');
  return folder ? `${folder}/${file.name}` : file.name;
}

async function uploadOne(file) {
  const path = targetPath(file);
  const progress = h('progress', { max: '100', value: '0', 'aria-label': `Upload progress of ${file.name}` });
  const percent = h('span', { class: 'percent', text: '0%' });
  const message = h('span', { class: 'upload-message', text: `Uploading ${formatBytes(file.size)}…` });
  const item = h('li', { class: 'upload-item', dataset: { state: 'uploading', events: '0' } },
    h('span', { class: 'upload-name', text: file.name, title: file.name }), progress, percent, message);
  $('upload-list').prepend(item);

  const update = (value) => {
    progress.value = value;
    percent.textContent = `${value}%`;
  };
  try {
    const info = await api.uploadFile(file, {
      path,
      sessionId: $('filter-session').value.trim(),
      overwrite: $('upload-overwrite').checked,
    }, (loaded, total) => {
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
    const session = $('filter-session').value.trim();
    const shown = path.startsWith('/') ? path : session ? `/sessions/${session}/${path}` : `/${path}`;
    let text = api.describeError(err, { path: shown });
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
  status(`Uploading ${list.length} file${list.length === 1 ? '' : 's'}…`, 'info');
  let ok = 0;
  for (const file of list) {
    if (await uploadOne(file)) ok += 1;
  }
  const failed = list.length - ok;
  status(failed ? `${ok} uploaded, ${failed} failed: see the messages above.` : `${ok} uploaded.`, failed ? 'error' : 'ok');
  await Promise.all([loadFiles(), refreshUsage()]);
}

// ---------------------------------------------------------------------------------------------

function wire() {
  $('filter-form').addEventListener('submit', (event) => {
    event.preventDefault();
    resetPages();
    status('');
    loadFiles();
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
}

/** Called each time the files view is shown. */
export function showFiles() {
  if (!wired) {
    wire();
    wired = true;
  }
  loadFiles();
  refreshUsage();
}
