// A small, safe Markdown renderer for chat messages. It builds DOM nodes with createElement and
// text nodes only (never innerHTML), so raw HTML in a message is shown as text and cannot run.
// Supported: paragraphs with line breaks, headings, fenced and inline code, block quotes,
// ordered and unordered lists (nested by indentation), tables (GitHub's pipe tables, with column
// alignment), rules, emphasis, strong, strikethrough,
// links (http, https and mailto only), autolinks, images, and `workspace://` references, which
// are handed to `options.media` to become images or videos.

import { h } from './dom.js';

const UUID = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';
const MIME_PART = "[A-Za-z0-9!#$&^_.+-]+";
const WORKSPACE_REF = new RegExp(`workspace://(?:(${UUID})(?:#(${MIME_PART}/${MIME_PART}))?|(/[^\\s()<>"'\`]+))`, 'y');
const AUTOLINK = /https?:\/\/[^\s<>"'`]+/y;
const SAFE_DATA_IMAGE = /^data:image\/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]+$/;

/**
 * Parses `raw` as a workspace reference. Returns `{ raw, id, mime, path }` or null.
 * `workspace://{uuid}`, `workspace://{uuid}#type/subtype` and `workspace:///path` are accepted.
 */
export function parseWorkspaceRef(raw) {
  WORKSPACE_REF.lastIndex = 0;
  const m = WORKSPACE_REF.exec(raw);
  if (!m || m[0].length !== raw.length) return null;
  return refFromMatch(m);
}

function refFromMatch(m) {
  return { raw: m[0], id: m[1] ? m[1].toLowerCase() : null, mime: m[2] ? m[2].toLowerCase() : null, path: m[3] || null };
}

/** Renders `source` into a DocumentFragment. `options.media(ref, alt)` returns a Node. */
export function renderMarkdown(source, options = {}) {
  const ctx = {
    media: options.media || ((ref) => document.createTextNode(ref.raw)),
    depth: 0,
  };
  const fragment = document.createDocumentFragment();
  const lines = String(source ?? '').replace(/\r\n?/g, '\n').split('\n');
  for (const node of parseBlocks(lines, ctx)) fragment.append(node);
  return fragment;
}

// ---------------------------------------------------------------------------------------------
// Blocks

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)/;
const HEADING = /^ {0,3}(#{1,6})(?:\s+(.*?))?\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}> ?/;
const LIST_ITEM = /^( *)([-*+]|\d{1,9}[.)])(?:\s+(.*)|$)/;

function indentOf(line) {
  return line.length - line.replace(/^ +/, '').length;
}

const TABLE_DELIMITER = /^ {0,3}\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

/** Splits a table row into cells on unescaped pipes (outer pipes optional). */
export function tableCells(line) {
  let row = line.trim();
  if (row.startsWith('|')) row = row.slice(1);
  if (row.endsWith('|') && !row.endsWith('\\|')) row = row.slice(0, -1);
  const cells = [];
  let cell = '';
  for (let i = 0; i < row.length; i += 1) {
    if (row[i] === '\\' && row[i + 1] === '|') {
      cell += '|';
      i += 1;
    } else if (row[i] === '|') {
      cells.push(cell.trim());
      cell = '';
    } else {
      cell += row[i];
    }
  }
  cells.push(cell.trim());
  return cells;
}

/** A table starts at `i` when the line has a pipe and the next is a delimiter row with as many cells. */
function tableStart(lines, i) {
  if (i + 1 >= lines.length || !lines[i].includes('|') || !TABLE_DELIMITER.test(lines[i + 1])) return false;
  if (!lines[i + 1].includes('|') && tableCells(lines[i]).length !== 1) return false;
  return tableCells(lines[i]).length === tableCells(lines[i + 1]).length;
}

function parseTable(lines, start, ctx, out) {
  const header = tableCells(lines[start]);
  const aligns = tableCells(lines[start + 1]).map((d) => {
    const left = d.startsWith(':');
    const right = d.endsWith(':');
    return left && right ? 'center' : right ? 'right' : left ? 'left' : '';
  });
  const cell = (tag, text, col) => h(tag, { class: aligns[col] ? `align-${aligns[col]}` : false, scope: tag === 'th' ? 'col' : false },
    parseInline(text, ctx));
  const head = h('tr', {}, header.map((text, col) => cell('th', text, col)));
  const body = h('tbody');
  let i = start + 2;
  while (i < lines.length && !/^\s*$/.test(lines[i]) && lines[i].includes('|') && !startsBlock(lines[i])) {
    const cells = tableCells(lines[i]);
    // Rows have the header's width: missing cells are empty, extra cells are dropped.
    body.append(h('tr', {}, header.map((_, col) => cell('td', cells[col] ?? '', col))));
    i += 1;
  }
  // The wrapper scrolls a wide table sideways; it takes focus so the keyboard can scroll it too.
  out.push(h('div', { class: 'md-table', tabindex: '0' }, h('table', {}, h('thead', {}, head), body)));
  return i;
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || LIST_ITEM.test(line);
}

function parseBlocks(inputLines, ctx) {
  // Tabs count as four spaces for indentation.
  const lines = inputLines.map((l) => l.replace(/\t/g, '    '));
  const out = [];
  if (ctx.depth > 20) {
    out.push(h('p', { text: lines.join('\n') }));
    return out;
  }
  ctx.depth += 1;
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (/^\s*$/.test(line)) {
      i += 1;
      continue;
    }
    let m;
    if ((m = FENCE.exec(line))) {
      const fence = m[1];
      const body = [];
      i += 1;
      const closing = new RegExp(`^ {0,3}${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
      while (i < lines.length && !closing.test(lines[i])) {
        body.push(lines[i]);
        i += 1;
      }
      i += 1; // the closing fence (or the end)
      const code = h('code', { text: body.join('\n') });
      if (m[2]) code.dataset.lang = m[2];
      out.push(h('pre', {}, code));
    } else if ((m = HEADING.exec(line))) {
      // Message headings sit below the page's own headings.
      const level = Math.min(6, m[1].length + 2);
      out.push(h(`h${level}`, { class: 'md-heading' }, parseInline(m[2] || '', ctx)));
      i += 1;
    } else if (RULE.test(line)) {
      out.push(h('hr'));
      i += 1;
    } else if (QUOTE.test(line)) {
      const body = [];
      while (i < lines.length && !/^\s*$/.test(lines[i])) {
        body.push(lines[i].replace(QUOTE, ''));
        i += 1;
      }
      out.push(h('blockquote', {}, parseBlocks(body, ctx)));
    } else if ((m = LIST_ITEM.exec(line))) {
      i = parseList(lines, i, ctx, out);
    } else if (tableStart(lines, i)) {
      i = parseTable(lines, i, ctx, out);
    } else {
      const body = [line];
      i += 1;
      while (i < lines.length && !/^\s*$/.test(lines[i]) && !startsBlock(lines[i]) && !tableStart(lines, i)) {
        body.push(lines[i]);
        i += 1;
      }
      out.push(h('p', {}, parseInline(body.map((l) => l.trim()).join('\n'), ctx)));
    }
  }
  ctx.depth -= 1;
  return out;
}

function parseList(lines, start, ctx, out) {
  const first = LIST_ITEM.exec(lines[start]);
  const baseIndent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const list = ordered ? h('ol') : h('ul');
  if (ordered) {
    const n = parseInt(first[2], 10);
    if (n !== 1) list.setAttribute('start', String(n));
  }
  let i = start;
  while (i < lines.length) {
    const m = LIST_ITEM.exec(lines[i]);
    if (!m || m[1].length !== baseIndent || /\d/.test(m[2]) !== ordered) break;
    const contentIndent = baseIndent + m[2].length + 1;
    const body = [m[3] || ''];
    i += 1;
    while (i < lines.length) {
      const line = lines[i];
      if (/^\s*$/.test(line)) {
        // A blank line continues the item only if indented content follows.
        if (i + 1 < lines.length && indentOf(lines[i + 1]) >= contentIndent && !/^\s*$/.test(lines[i + 1])) {
          body.push('');
          i += 1;
          continue;
        }
        break;
      }
      const indent = indentOf(line);
      if (indent > baseIndent) {
        body.push(line.slice(Math.min(indent, contentIndent)));
        i += 1;
      } else if (!startsBlock(line) && indent === baseIndent && body.length && !LIST_ITEM.test(line)) {
        body.push(line.trim()); // lazy continuation
        i += 1;
      } else {
        break;
      }
    }
    const blocks = parseBlocks(body, ctx);
    const li = h('li');
    if (blocks.length === 1 && blocks[0].tagName === 'P') {
      li.append(...blocks[0].childNodes);
    } else {
      li.append(...blocks);
    }
    list.append(li);
  }
  out.push(list);
  return i;
}

// ---------------------------------------------------------------------------------------------
// Inline

const PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/;

/** Finds the `]` that closes the `[` at `open`, honouring nesting and escapes. */
function closingBracket(text, open) {
  let depth = 0;
  for (let i = open; i < text.length; i += 1) {
    const c = text[i];
    if (c === '\\') i += 1;
    else if (c === '[') depth += 1;
    else if (c === ']') {
      depth -= 1;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/** Parses `(dest "title")` at `open`; returns `{ dest, end }` (end: index after `)`) or null. */
function linkDestination(text, open) {
  if (text[open] !== '(') return null;
  let i = open + 1;
  while (text[i] === ' ') i += 1;
  let dest = '';
  if (text[i] === '<') {
    const close = text.indexOf('>', i);
    if (close < 0) return null;
    dest = text.slice(i + 1, close);
    i = close + 1;
  } else {
    let depth = 0;
    const begin = i;
    while (i < text.length) {
      const c = text[i];
      if (c === '\\') {
        i += 2;
        continue;
      }
      if (c === '(') depth += 1;
      else if (c === ')') {
        if (depth === 0) break;
        depth -= 1;
      } else if (/\s/.test(c)) break;
      i += 1;
    }
    dest = text.slice(begin, i);
  }
  while (text[i] === ' ') i += 1;
  if (text[i] === '"' || text[i] === "'") {
    const close = text.indexOf(text[i], i + 1);
    if (close < 0) return null;
    i = close + 1;
    while (text[i] === ' ') i += 1;
  }
  if (text[i] !== ')') return null;
  return { dest: dest.replace(/\\(.)/g, '$1'), end: i + 1 };
}

/** An href the browser may follow: absolute http, https or mailto only. */
export function safeHref(dest) {
  try {
    const url = new URL(dest);
    return ['http:', 'https:', 'mailto:'].includes(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

function link(href, children) {
  return h('a', { href, target: '_blank', rel: 'noopener noreferrer nofollow' }, children);
}

/** Finds the closing delimiter run for emphasis starting at `from`. */
function closingDelimiter(text, from, delim) {
  let i = from;
  while (i < text.length) {
    if (text[i] === '\\') {
      i += 2;
      continue;
    }
    if (text[i] === '`') {
      // Skip code spans: emphasis never closes inside them.
      const run = /^`+/.exec(text.slice(i))[0];
      const close = text.indexOf(run, i + run.length);
      if (close > 0) {
        i = close + run.length;
        continue;
      }
    }
    if (text.startsWith(delim, i) && !/\s/.test(text[i - 1] || ' ')) {
      if (delim[0] === '_' && /[\p{L}\p{N}]/u.test(text[i + delim.length] || '')) {
        i += 1;
        continue;
      }
      if (delim.length === 1 && text[i + 1] === delim) {
        i += 2;
        continue;
      }
      return i;
    }
    i += 1;
  }
  return -1;
}

function parseInline(text, ctx) {
  const nodes = [];
  let buffer = '';
  const flush = () => {
    if (buffer) nodes.push(document.createTextNode(buffer));
    buffer = '';
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i];

    if (c === '\\' && i + 1 < text.length && PUNCTUATION.test(text[i + 1])) {
      buffer += text[i + 1];
      i += 2;
      continue;
    }

    if (c === '\n') {
      flush();
      nodes.push(h('br'));
      i += 1;
      continue;
    }

    if (c === '`') {
      const run = /^`+/.exec(text.slice(i))[0];
      const close = text.indexOf(run, i + run.length);
      if (close > 0) {
        flush();
        nodes.push(h('code', { text: text.slice(i + run.length, close).replace(/\n/g, ' ') }));
        i = close + run.length;
        continue;
      }
      buffer += run;
      i += run.length;
      continue;
    }

    if ((c === '!' && text[i + 1] === '[') || c === '[') {
      const open = c === '!' ? i + 1 : i;
      const close = closingBracket(text, open);
      const target = close > 0 ? linkDestination(text, close + 1) : null;
      if (target) {
        const label = text.slice(open + 1, close);
        flush();
        nodes.push(c === '!' ? image(label, target.dest, ctx) : anchor(label, target.dest, ctx));
        i = target.end;
        continue;
      }
    }

    if ((c === '*' || c === '_' || c === '~') && ctx.depth < 40) {
      const run = /^(\*+|_+|~+)/.exec(text.slice(i))[0];
      const delim = c === '~' ? (run.length >= 2 ? '~~' : null) : run.slice(0, Math.min(run.length, 2));
      const leftOk = delim && !/\s/.test(text[i + delim.length] || ' ');
      const wordBefore = c === '_' && /[\p{L}\p{N}]/u.test(text[i - 1] || '');
      if (leftOk && !wordBefore) {
        const close = closingDelimiter(text, i + delim.length, delim);
        if (close > i + delim.length) {
          flush();
          const tag = c === '~' ? 'del' : delim.length === 2 ? 'strong' : 'em';
          ctx.depth += 1;
          nodes.push(h(tag, {}, parseInline(text.slice(i + delim.length, close), ctx)));
          ctx.depth -= 1;
          i = close + delim.length;
          continue;
        }
      }
      buffer += run;
      i += run.length;
      continue;
    }

    if (c === 'w' && text.startsWith('workspace://', i)) {
      WORKSPACE_REF.lastIndex = i;
      const m = WORKSPACE_REF.exec(text);
      if (m) {
        flush();
        nodes.push(ctx.media(refFromMatch(m), ''));
        i += m[0].length;
        continue;
      }
    }

    if (c === 'h' && !/[\p{L}\p{N}]/u.test(text[i - 1] || '')) {
      // Web addresses in plain text become links (scheme http or https only).
      AUTOLINK.lastIndex = i;
      const m = AUTOLINK.exec(text);
      if (m) {
        const raw = m[0].replace(/[.,;:!?)\]]+$/, '');
        const href = safeHref(raw);
        if (href) {
          flush();
          nodes.push(link(href, raw));
          i += raw.length;
          continue;
        }
      }
    }

    buffer += c;
    i += 1;
  }
  flush();
  return nodes;
}

function plainText(label) {
  return label.replace(/\\(.)/g, '$1');
}

function image(alt, dest, ctx) {
  const ref = parseWorkspaceRef(dest.trim());
  if (ref) return ctx.media(ref, plainText(alt));
  if (SAFE_DATA_IMAGE.test(dest)) return h('img', { src: dest, alt: plainText(alt), class: 'md-image' });
  // Other images would load from another origin; the page's policy forbids that, so link instead.
  const href = safeHref(dest);
  const text = `[image: ${plainText(alt) || 'untitled'}]`;
  return href ? link(href, text) : document.createTextNode(text);
}

function anchor(label, dest, ctx) {
  const ref = parseWorkspaceRef(dest.trim());
  if (ref) return ctx.media(ref, plainText(label));
  const href = safeHref(dest.trim());
  const children = parseInline(label, ctx);
  if (!href) return h('span', { class: 'md-unsafe-link', title: 'Link not followed (only http, https and mailto)' }, children);
  return link(href, children);
}
