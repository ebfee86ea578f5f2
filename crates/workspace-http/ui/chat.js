// The chat view: a transcript (a JSON list of {role, content}, or plain markdown) rendered as
// messages. Markdown goes through the safe renderer; every `workspace://` reference becomes an
// image or video loaded through a signed download link (renewed once when it fails, e.g. expired),
// with a badge saying the AI cannot see it.

import { ApiError, getFile, listFiles, signedUrl } from './api.js';
import { $, clear, h, setStatus } from './dom.js';
import { renderMarkdown } from './markdown.js';

export const BADGE_TEXT = 'AI cannot see this image';
const STORAGE_KEY = 'workspace.transcript';
const KNOWN_ROLES = new Set(['user', 'assistant', 'system', 'tool', 'document']);

let wired = false;
let renderCount = 0;

/**
 * Reads what was pasted: a JSON transcript (a list of messages, or `{messages: [...]}`), or else
 * plain markdown, shown as one message. Text that merely starts like JSON (`[link](…)`) but does
 * not parse as a transcript is markdown too.
 */
export function parseTranscript(text) {
  const trimmed = text.trim();
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) {
    try {
      return { kind: 'json', messages: normaliseTranscript(JSON.parse(trimmed)) };
    } catch {
      // Not a transcript: fall through to markdown.
    }
  }
  return { kind: 'markdown', messages: [{ role: 'document', content: text }] };
}

/** Turns the parsed JSON into `[{ role, content }]` with string content, or throws. */
export function normaliseTranscript(data) {
  const list = Array.isArray(data) ? data : Array.isArray(data?.messages) ? data.messages : null;
  if (!list) throw new Error('expected a JSON list of messages, or an object with a "messages" list');
  return list.map((message, index) => {
    if (!message || typeof message !== 'object') throw new Error(`message ${index + 1} is not an object`);
    const role = typeof message.role === 'string' ? message.role : 'unknown';
    return { role, content: contentText(message.content) };
  });
}

function contentText(content) {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (Array.isArray(content)) {
    return content
      .map((part) => {
        if (typeof part === 'string') return part;
        if (part?.type === 'text' && typeof part.text === 'string') return part.text;
        const url = part?.image_url?.url ?? part?.image_url ?? part?.url;
        if (typeof url === 'string' && url.startsWith('workspace://')) return `![image](${url})`;
        return `[${part?.type ?? 'unsupported'} part]`;
      })
      .join('\n\n');
  }
  return JSON.stringify(content, null, 2);
}

/** Resolves references once per render: the same id shares one lookup and one signed link. */
function resolver() {
  const cache = new Map();
  return (ref) => {
    const key = ref.id ?? `path:${ref.path}`;
    if (!cache.has(key)) cache.set(key, lookup(ref));
    return cache.get(key);
  };
}

async function lookup(ref) {
  let info;
  if (ref.id) {
    info = await getFile(ref.id);
  } else {
    const page = await listFiles({ pathPrefix: ref.path, sort: 'path:asc', limit: 1 });
    info = page.files.find((f) => f.path === ref.path);
    if (!info) throw new ApiError(404, 'not_found', 'no file at that path');
  }
  const url = await signedUrl(info.id, { disposition: 'inline' });
  return { info, url };
}

function kindOf(mime) {
  if (mime.startsWith('image/') && mime !== 'image/svg+xml') return 'image';
  if (mime.startsWith('video/')) return 'video';
  if (mime.startsWith('audio/')) return 'audio';
  return 'file';
}

function placeholder(box, ref, reason, broken = false) {
  clear(box);
  box.className = `ws-media ws-missing${broken ? ' ws-broken' : ''}`;
  box.setAttribute('role', 'img');
  box.setAttribute('aria-label', `Unavailable workspace file: ${reason}`);
  box.append(
    h('span', { class: 'ws-missing-icon', 'aria-hidden': 'true', text: '⊘' }),
    h('span', { class: 'ws-missing-text' },
      h('strong', { text: broken ? 'Image broken' : 'File unavailable' }),
      h('span', { text: ` — ${reason}` }),
      h('code', { text: ref.raw })),
  );
}

/**
 * An image on a signed link. Links expire (and lazy images may load long after the link was
 * made): on a load error the image asks for a fresh link once and retries; a second failure shows
 * a broken-image placeholder that says so.
 */
function renewingImage(box, ref, info, url, label) {
  const img = h('img', { src: url, alt: label, loading: 'lazy', decoding: 'async' });
  img.dataset.renewed = '0';
  const onError = async () => {
    if (img.dataset.renewed === '0') {
      img.dataset.renewed = '1';
      try {
        img.src = await signedUrl(info.id, { disposition: 'inline' });
        return;
      } catch (err) {
        const gone = err instanceof ApiError && err.status === 404;
        img.removeEventListener('error', onError);
        placeholder(box, ref, gone ? 'not found or deleted from the workspace' : `its link could not be renewed (${err.message})`, true);
        return;
      }
    }
    img.removeEventListener('error', onError);
    placeholder(box, ref, 'the image could not be loaded, even with a fresh link', true);
  };
  img.addEventListener('error', onError);
  return img;
}

function badge() {
  return h('span', { class: 'ws-badge', text: BADGE_TEXT });
}

/** The node standing for one reference: a loading box, filled in when the lookup finishes. */
function mediaNode(resolve) {
  return (ref, alt) => {
    const box = h('span', { class: 'ws-media ws-loading', dataset: { ref: ref.raw } },
      h('span', { class: 'ws-loading-text', text: 'Loading workspace file…' }));
    resolve(ref).then(
      ({ info, url }) => {
        const mime = (info.mime_type && info.mime_type !== 'application/octet-stream' ? info.mime_type : ref.mime || '').toLowerCase();
        const kind = kindOf(mime);
        clear(box);
        box.className = `ws-media ws-${kind}`;
        box.dataset.fileId = info.id;
        const label = alt || info.name;
        if (kind === 'image') {
          box.append(renewingImage(box, ref, info, url, label), badge());
        } else if (kind === 'video' || kind === 'audio') {
          const media = h(kind, { src: url, controls: true, preload: 'metadata', 'aria-label': label });
          box.append(media, badge());
        } else {
          box.append(h('a', { href: `${url}&disposition=attachment`, download: info.name, class: 'ws-file-chip' },
            h('span', { 'aria-hidden': 'true', text: '📄 ' }), info.name));
        }
      },
      (err) => {
        const reason = err instanceof ApiError && (err.status === 404 || err.status === 400)
          ? 'not found or deleted from the workspace'
          : `could not be loaded (${err.message})`;
        placeholder(box, ref, reason);
      },
    );
    return box;
  };
}

/** Renders messages into the chat log. */
export function renderTranscript(messages) {
  renderCount += 1;
  const log = $('chat-log');
  clear(log);
  log.dataset.render = String(renderCount);
  const media = mediaNode(resolver());
  for (const message of messages) {
    const role = KNOWN_ROLES.has(message.role) ? message.role : 'other';
    const body = h('div', { class: 'msg-body' });
    body.append(renderMarkdown(message.content, { media }));
    log.append(h('li', { class: `msg msg-${role}` },
      h('div', { class: 'msg-role', text: message.role }),
      body));
  }
}

function renderFromInput() {
  const status = $('chat-status');
  const text = $('chat-input').value;
  if (!text.trim()) {
    setStatus(status, 'Paste a transcript first.', 'error');
    return;
  }
  const { messages, kind } = parseTranscript(text);
  sessionStorage.setItem(STORAGE_KEY, text);
  setStatus(status, kind === 'json'
    ? `${messages.length} message${messages.length === 1 ? '' : 's'} shown.`
    : 'Shown as markdown (this is not a JSON list of messages).', 'ok');
  renderTranscript(messages);
}

function wire() {
  $('chat-form').addEventListener('submit', (event) => {
    event.preventDefault();
    renderFromInput();
  });
  $('chat-file').addEventListener('change', async (event) => {
    const file = event.target.files?.[0];
    if (!file) return;
    try {
      $('chat-input').value = await file.text();
      renderFromInput();
    } catch (err) {
      setStatus($('chat-status'), `Could not read ${file.name}: ${err.message}`, 'error');
    }
    event.target.value = '';
  });
}

/** Called each time the chat view is shown: re-renders so deleted files show as placeholders. */
export function showChat() {
  if (!wired) {
    wire();
    wired = true;
  }
  const saved = sessionStorage.getItem(STORAGE_KEY);
  if (saved && !$('chat-input').value) $('chat-input').value = saved;
  if ($('chat-input').value.trim()) renderFromInput();
}
