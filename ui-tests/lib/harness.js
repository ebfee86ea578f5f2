// Shared by the UI tests: the real workspace-server binary on loopback, real headless Chromium
// through playwright-core (the system's /usr/bin/chromium, never a downloaded browser), PNG
// bytes made here, and screenshots under the repository's target/ui-screenshots/.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(here, '..', '..');
export const SCREENSHOT_DIR = process.env.UI_SCREENSHOT_DIR || join(REPO_ROOT, 'target', 'ui-screenshots');

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/**
 * Starts the server binary (WORKSPACE_SERVER_BIN) in embedded mode on an ephemeral port with a
 * fresh data directory, and reads the address and the local-user token it prints.
 */
export async function startServer(extraEnv = {}) {
  const bin = process.env.WORKSPACE_SERVER_BIN;
  if (!bin) throw new Error('set WORKSPACE_SERVER_BIN to the workspace-server binary (scripts/ui-test.sh does)');
  const dir = await mkdtemp(join(tmpdir(), 'ws-ui-test-'));
  // A clean environment: nothing from the caller's WS_* or DATABASE_URL leaks in.
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    RUST_LOG: 'warn',
    WS_DATA_DIR: join(dir, 'data'),
    WS_BIND: '127.0.0.1:0',
    ...extraEnv,
  };
  const child = spawn(bin, [], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr = [];
  child.stderr.on('data', (chunk) => stderr.push(chunk));
  const lines = createInterface({ input: child.stdout });

  const started = new Promise((resolveStart, reject) => {
    let base = null;
    let expectToken = false;
    const timer = setTimeout(() => reject(new Error(`server did not start in 60 s: ${Buffer.concat(stderr)}`)), 60_000);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${Buffer.concat(stderr)}`)));
    lines.on('line', (line) => {
      if (line.startsWith('workspace-server listening on ')) base = line.slice('workspace-server listening on '.length).trim();
      else if (line.startsWith('Token for local-user')) expectToken = true;
      else if (expectToken && line.trim()) {
        expectToken = false;
        clearTimeout(timer);
        resolveStart({ base, token: line.trim() });
      }
    });
  });
  const { base, token } = await started;
  return {
    base,
    token,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        let timer;
        await Promise.race([exited, new Promise((r) => { timer = setTimeout(r, 10_000); })]);
        clearTimeout(timer);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Headless Chromium from the system package. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
}

/** The two sizes every view is checked at. */
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/**
 * A page that records every problem the tests must not see: JavaScript dialogs (alert, confirm,
 * prompt), uncaught errors, and console errors such as CSP violations.
 */
export async function newWatchedPage(browser, { viewport = { width: 1280, height: 900 }, mobile = false } = {}) {
  const context = await browser.newContext({
    viewport,
    acceptDownloads: true,
    ...(mobile ? { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } : {}),
  });
  const page = await context.newPage();
  const problems = { dialogs: [], errors: [], console: [] };
  page.on('dialog', async (dialog) => {
    problems.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    await dialog.dismiss().catch(() => {});
  });
  page.on('pageerror', (err) => problems.errors.push(String(err)));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.console.push(msg.text());
  });
  return { context, page, problems };
}

export async function screenshot(page, name) {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

const AXE_SOURCE = readFileSync(join(here, '..', 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');

/**
 * Runs axe-core on the page as it is now and returns its violations (WCAG 2.1 A and AA and axe's
 * best practices), each as `rule: target…`. axe is evaluated through the DevTools protocol, which
 * the page's CSP does not govern; the page itself keeps its policy.
 */
export async function axeViolations(page) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async () => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    resultTypes: ['violations'],
  }));
  return result.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
}

/** A screenshot of the view and an axe-core check of it, in one step: every view gets both. */
export async function checkView(page, name) {
  await screenshot(page, name);
  return axeViolations(page);
}

/** Whether the page scrolls sideways (the document is wider than the viewport). */
export function sidewaysOverflow(page) {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

/** Uploads through the API as another client would (multipart, bearer token). */
export async function apiUpload(server, path, content, type = 'text/plain') {
  const form = new FormData();
  form.append('path', path);
  form.append('overwrite', 'true');
  form.append('file', new Blob([content], { type }), path.split('/').pop());
  const response = await fetch(`${server.base}/api/workspace/files`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${server.token}` },
    body: form,
  });
  if (!response.ok) throw new Error(`upload ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

/** Any other API call as JSON (bearer token). */
export async function api(server, method, path, body) {
  const response = await fetch(`${server.base}/api/workspace${path}`, {
    method,
    headers: { Authorization: `Bearer ${server.token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.status === 204 ? null : response.json();
}

/** Signs in through the form with `token`. */
export async function signIn(page, base, token) {
  await page.goto(`${base}/`);
  await page.getByLabel('Access token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#view-files').waitFor({ state: 'visible' });
  await page.locator('#listing[aria-busy="false"]').waitFor();
}

/** The names of the files listed, in order. */
export function listedNames(page) {
  return page.locator('#file-list .item.file .item-name').evaluateAll((els) => els.map((e) => e.title || e.textContent));
}

/** Picks `files` through the page's file chooser (clicking "Choose files…"). */
export async function chooseFiles(page, files) {
  const [chooser] = await Promise.all([
    page.waitForEvent('filechooser'),
    page.locator('label[for="upload-input"]').click(),
  ]);
  await chooser.setFiles(files);
}

// -------------------------------------------------------------------------------------------
// PNG encoding (enough for a valid RGB image)

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/**
 * A width×height RGB PNG: a colour gradient with a circle, plus pseudo-random noise when
 * `noise` is set (so the file stays large after compression and the upload takes many
 * progress events).
 */
export function makePng(width, height, { noise = false, seed = 1 } = {}) {
  let state = seed >>> 0 || 1;
  const random = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) & 0xff;
  };
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y += 1) {
    const row = y * (width * 3 + 1);
    raw[row] = 0;
    for (let x = 0; x < width; x += 1) {
      const dx = x - width / 2;
      const dy = y - height / 2;
      const inside = dx * dx + dy * dy < (Math.min(width, height) / 3) ** 2;
      const n = noise ? random() >> 2 : 0;
      const i = row + 1 + x * 3;
      raw[i] = inside ? 250 - n : Math.round((x / width) * 200) + n / 2;
      raw[i + 1] = inside ? 180 + (n >> 1) : Math.round((y / height) * 160) + n / 2;
      raw[i + 2] = inside ? 40 : 200 - n / 2;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
