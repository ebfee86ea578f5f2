// Live updates from the change feed (SPEC §16). EventSource cannot send the Authorization header,
// so the stream is read with fetch() and parsed here: `id:`, `event:` and `data:` fields, events
// ended by a blank line, comments (keep-alives) ignored. A dropped stream reconnects with
// `Last-Event-ID`, so no change is missed; each change is announced as a `workspace:change`
// window event whose `detail` is the event JSON.

import { getToken } from './api.js';

let controller = null;
let lastId = null;
let retryDelay = 1000;
let retryTimer = null;

/** `connecting`, `live` or `offline`, shown by the page and read by the tests. */
function setState(state) {
  document.body.dataset.live = state;
  const el = document.getElementById('live-state');
  if (el) {
    el.dataset.state = state;
    el.textContent = state === 'live' ? 'Live' : state === 'connecting' ? 'Connecting…' : 'Offline';
    el.title = state === 'live' ? 'Changes from anywhere appear here at once' : 'Live updates paused; reconnecting';
  }
}

/** Splits SSE text into events; returns the events and the unfinished tail. */
export function parseSse(buffer) {
  const events = [];
  const blocks = buffer.replace(/\r\n?/g, '\n').split('\n\n');
  const tail = blocks.pop();
  for (const block of blocks) {
    const event = { id: null, type: 'message', data: [] };
    for (const line of block.split('\n')) {
      if (!line || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'id') event.id = value;
      else if (field === 'event') event.type = value;
      else if (field === 'data') event.data.push(value);
    }
    if (event.data.length || event.id !== null) events.push({ ...event, data: event.data.join('\n') });
  }
  return { events, tail };
}

async function run(signal) {
  const headers = { Authorization: `Bearer ${getToken()}`, Accept: 'text/event-stream' };
  if (lastId !== null) headers['Last-Event-ID'] = lastId;
  setState('connecting');
  const response = await fetch('/api/workspace/events', { headers, signal, cache: 'no-store', credentials: 'omit' });
  if (response.status === 410) {
    // Events after our id are gone: start from now and reload what is shown.
    lastId = null;
    window.dispatchEvent(new CustomEvent('workspace:change', { detail: { type: 'resync' } }));
    throw new Error('resync');
  }
  if (response.status === 401) {
    window.dispatchEvent(new CustomEvent('workspace:unauthorized'));
    return;
  }
  if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
  setState('live');
  retryDelay = 1000;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const { events, tail } = parseSse(buffer);
    buffer = tail;
    for (const event of events) {
      if (event.id !== null) lastId = event.id;
      let detail;
      try {
        detail = JSON.parse(event.data);
      } catch {
        continue;
      }
      window.dispatchEvent(new CustomEvent('workspace:change', { detail }));
    }
  }
  throw new Error('stream ended');
}

let wired = false;

/** Follows the feed until `stopLive()`; reconnects with growing delays (1 s to 30 s). */
export function startLive() {
  if (!wired) {
    wired = true;
    // Offline, the stream is dropped (keeping the last id); online again, it resumes after it.
    window.addEventListener('offline', () => pauseLive());
    window.addEventListener('online', () => {
      if (getToken()) startLive();
    });
  }
  if (controller) return;
  controller = new AbortController();
  const { signal } = controller;
  const loop = () => {
    run(signal).catch(() => {
      if (signal.aborted) return;
      setState('offline');
      retryTimer = setTimeout(loop, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30_000);
    });
  };
  loop();
}

/** Drops the stream but remembers the last event id, so `startLive()` resumes with no gap. */
export function pauseLive() {
  controller?.abort();
  controller = null;
  clearTimeout(retryTimer);
  setState('offline');
}

/** Ends following (sign-out): the next start begins from now. */
export function stopLive() {
  pauseLive();
  lastId = null;
}
