// The file browser of SPEC §18 at desktop size (1280×800), against the real server: the nine
// defects of issue #19, each with a check that failed on the v1 UI, and the features (sort,
// search, folders and sessions, grid with thumbnails, selection with bulk move and delete, rename,
// versions, trash, share links, usage, live updates, chat with markdown and renewed image links).
// Every view is screenshotted and checked with axe-core.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  DESKTOP, api, apiUpload, checkView, chooseFiles, launchBrowser, listedNames, makePng, newWatchedPage,
  sidewaysOverflow, signIn, startServer,
} from '../lib/harness.js';

const BADGE = 'AI cannot see this image';
const pad = (n) => String(n).padStart(2, '0');

describe('file browser (desktop)', () => {
  let server;
  let browser;
  let context;
  let page;
  let problems;
  const ids = {};

  /** Waits until the listing has settled and shows `n` files. */
  const waitForCount = (n) => page.waitForFunction(
    (count) => document.querySelector('#listing')?.getAttribute('aria-busy') === 'false'
      && document.querySelectorAll('#file-list .item.file').length === count, n);

  const noViolations = async (name) => assert.deepEqual(await checkView(page, name), [], `axe on ${name}`);

  before(async () => {
    server = await startServer();
    // 30 files, oldest first, in /bulk: the fresh upload below must not land on a later page.
    for (let i = 1; i <= 30; i += 1) await apiUpload(server, `/bulk/file-${pad(i)}.txt`, `file ${i}\n`);
    browser = await launchBrowser();
    ({ context, page, problems } = await newWatchedPage(browser, { viewport: DESKTOP }));
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.base });
    await signIn(page, server.base, server.token);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('(4) lists newest first by default, so a fresh upload is the first row of page 1', async () => {
    assert.equal(await page.locator('#sort').inputValue(), 'created_at:desc');
    assert.equal(await page.locator('#sort option:checked').textContent(), 'Newest first');
    await waitForCount(25);
    await chooseFiles(page, { name: 'zz-fresh.txt', mimeType: 'text/plain', buffer: Buffer.from('fresh\n') });
    await page.locator('.upload-item[data-state="done"]', { hasText: 'zz-fresh.txt' }).waitFor();
    await page.waitForFunction(() => document.querySelector('#file-list .item.file .item-name')?.title === 'zz-fresh.txt');
    assert.equal((await listedNames(page))[0], 'zz-fresh.txt', 'by path it would be last, on page 2');
    assert.equal(await page.locator('#page-info').textContent(), 'Page 1 · 25 files');
    // The folder of the 30 files is shown above them, with its count.
    assert.match(await page.locator('#file-list .item.folder').first().textContent(), /bulk.*30 files/);
    assert.equal(await sidewaysOverflow(page), 0);
    await noViolations('20-files-list-desktop');
  });

  it('sorts by name and size, and remembers the choice', async () => {
    await page.getByLabel('Sort').selectOption({ label: 'Name A–Z' });
    await page.waitForFunction(() => document.querySelector('#file-list .item.file .item-name')?.title === 'file-01.txt');
    // file-10 … file-30 are the largest (8 bytes); ties follow the order's direction (path descending).
    await page.getByLabel('Sort').selectOption({ label: 'Largest first' });
    await page.waitForFunction(() => document.querySelector('#file-list .item.file .item-name')?.title === 'file-30.txt');
    await page.reload();
    await page.locator('#listing[aria-busy="false"]').waitFor();
    assert.equal(await page.locator('#sort').inputValue(), 'size:desc');
    await page.getByLabel('Sort').selectOption({ label: 'Newest first' });
    await page.waitForFunction(() => document.querySelector('#file-list .item.file .item-name')?.title === 'zz-fresh.txt');
  });

  it('(7) applies filters only on Enter or Apply; a session is a folder, shown unambiguously', async () => {
    await page.getByLabel('Name contains').fill('file-2');
    await chooseFiles(page, { name: 'typed-not-applied.txt', mimeType: 'text/plain', buffer: Buffer.from('x') });
    await page.locator('.upload-item[data-state="done"]', { hasText: 'typed-not-applied.txt' }).waitFor();
    await page.waitForFunction(() => document.querySelector('#file-list .item.file .item-name')?.title === 'typed-not-applied.txt');
    assert.equal(await page.locator('#file-list .item.file').count(), 25, 'the typed search was not applied');
    assert.match(await page.locator('#scope').textContent(), /^Files in the whole workspace/);

    await page.getByLabel('Name contains').press('Enter');
    await waitForCount(10);
    assert.ok((await listedNames(page)).every((n) => n.startsWith('file-2')));
    assert.match(await page.locator('#scope').textContent(), /name contains “file-2”, in the whole workspace/);

    // Sessions are the folders under /sessions; chat-1 must not show chat-10's files.
    await apiUpload(server, '/sessions/chat-1/one.txt', 'one');
    await apiUpload(server, '/sessions/chat-10/ten.txt', 'ten');
    await page.getByRole('button', { name: 'Clear', exact: true }).click();
    await page.locator('#session-list a[title="/sessions/chat-1"]').waitFor();
    await page.locator('#session-list a[title="/sessions/chat-1"]').click();
    await waitForCount(1);
    assert.deepEqual(await listedNames(page), ['one.txt']);
    assert.deepEqual(await page.locator('#breadcrumbs li').allTextContents(), ['All files', 'sessions', 'chat-1']);
    assert.match(await page.locator('#scope').textContent(), /^Files in \/sessions\/chat-1,/);
    assert.equal(await page.getByLabel('In folder').inputValue(), '/sessions/chat-1');
    assert.match(await page.locator('#upload-target').textContent(), /Uploads go to \/sessions\/chat-1\./);
    // The session list is redrawn when the change feed reports the uploads: wait for it rather
    // than sampling it once.
    await page.locator('#session-list a[title="/sessions/chat-1"]').waitFor({ state: 'visible' });
    await page.getByLabel('In folder').fill('/sessions/chat-10');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForFunction(() => document.querySelector('#file-list .item.file .item-name')?.title === 'ten.txt');
    assert.deepEqual(await listedNames(page), ['ten.txt']);
    await noViolations('21-session-desktop');
  });

  it('draws only the newest of two overlapping redraws of the tree and the session list', async () => {
    // Each navigation redraws the folder tree and the session list, and both ask for the folders
    // of /sessions. The first navigation's answers are held back until the second one has drawn:
    // arriving late, they must neither list the sessions again nor mark the older folder current
    // (both happened when a redraw cleared its list before its answer came).
    const held = [];
    let holding = true;
    const sessions = (url) => url.pathname === '/api/workspace/files'
      && url.searchParams.get('delimiter') === '/' && url.searchParams.get('path_prefix') === '/sessions';
    await page.route(sessions, (route) => (holding ? held.push(route) : route.continue()));
    const current = (list) => page.locator(`${list} a[aria-current="page"]`).getAttribute('title');

    await page.goto(`${server.base}/#/files?path=/sessions/chat-1`);
    for (let waited = 0; held.length < 2; waited += 20) {
      assert.ok(waited < 10_000, `the tree and the session list both ask for /sessions (asked: ${held.length})`);
      await new Promise((resolve) => { setTimeout(resolve, 20); });
    }
    holding = false;
    await page.goto(`${server.base}/#/files?path=/sessions/chat-10`);
    await page.locator('#session-list a[aria-current="page"][title="/sessions/chat-10"]').waitFor();
    await page.locator('#folder-tree a[aria-current="page"][title="/sessions/chat-10"]').waitFor();

    const late = held.map((route) => route.request().response());
    await Promise.all(held.map((route) => route.continue()));
    await Promise.all(late);
    // Let the late answers' promises settle and anything they would draw be drawn.
    await page.evaluate(() => new Promise((resolve) => { setTimeout(resolve, 300); }));
    await page.unroute(sessions);

    assert.equal(await page.locator('#session-list a[title="/sessions/chat-1"]').count(), 1);
    assert.equal(await page.locator('#session-list a[title="/sessions/chat-10"]').count(), 1);
    assert.equal(await current('#session-list'), '/sessions/chat-10');
    assert.equal(await current('#folder-tree'), '/sessions/chat-10');
    assert.equal(await page.locator('#folder-tree a[title="/sessions"]').count(), 1);
  });

  it('(8) tells a failed listing, a search without match and an empty folder apart; substring search works', async () => {
    await page.goto(`${server.base}/#/files?q=file-1`);
    await waitForCount(10);
    assert.deepEqual((await listedNames(page)).sort(), Array.from({ length: 10 }, (_, i) => `file-1${i}.txt`));

    // A name search examines a bounded window per request, so the server may answer a short or
    // empty page with a cursor: the UI keeps reading instead of saying "no match".
    const searches = [];
    const search = (url) => url.pathname === '/api/workspace/files' && url.searchParams.get('q') === 'file-1';
    await page.route(search, (route) => {
      const url = new URL(route.request().url());
      searches.push(url.searchParams.get('cursor'));
      if (!url.searchParams.has('cursor')) {
        return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ files: [], next_cursor: 'window-1' }) });
      }
      url.searchParams.delete('cursor');
      return route.continue({ url: url.toString() });
    });
    await page.goto(`${server.base}/#/files`);
    await waitForCount(25);
    await page.goto(`${server.base}/#/files?q=file-1`);
    await waitForCount(10);
    assert.deepEqual(searches, [null, 'window-1']);
    assert.equal(await page.locator('#files-empty').isVisible(), false);
    await page.unroute(search);

    await page.getByLabel('Name contains').fill('no-such-name');
    await page.getByLabel('Name contains').press('Enter');
    const empty = page.locator('#files-empty');
    await page.locator('#files-empty[data-kind="no-match"]').waitFor();
    assert.match(await empty.textContent(), /No file name contains “no-such-name” in the workspace\./);
    assert.match(await empty.textContent(), /any part of a name matches/);
    assert.doesNotMatch(await empty.textContent(), /yet/);
    await noViolations('22-no-match-desktop');

    await page.goto(`${server.base}/#/files?path=/nothing-here`);
    await page.locator('#files-empty[data-kind="empty"]').waitFor();
    assert.match(await empty.textContent(), /The folder \/nothing-here is empty\./);
    await noViolations('23-empty-folder-desktop');

    const listing = (url) => url.pathname === '/api/workspace/files';
    await page.route(listing, (route) => route.fulfill({
      status: 503, contentType: 'application/json', headers: { 'Retry-After': '1' },
      body: JSON.stringify({ error: 'unavailable', message: 'the database did not answer in time' }),
    }));
    await page.goto(`${server.base}/#/files`);
    await page.locator('#files-empty[data-kind="error"]').waitFor();
    assert.match(await empty.textContent(), /The files could not be loaded: .*the database did not answer in time/);
    assert.doesNotMatch(await empty.textContent(), /No files|empty/);
    assert.equal(await page.locator('#file-list .item').count(), 0);
    await noViolations('24-list-error-desktop');
    await page.unroute(listing);
    await page.getByRole('button', { name: 'Try again' }).click();
    await waitForCount(25);
    assert.equal(await empty.isVisible(), false);
  });

  it('(1) says "only the first 64 KiB" only for a file that really is longer', async () => {
    const short = await apiUpload(server, '/texts/short.txt', `${'x'.repeat(70)}\n`);
    assert.equal(short.size_bytes, 71);
    await apiUpload(server, '/texts/long.txt', 'y'.repeat(70 * 1024));
    await page.goto(`${server.base}/#/files?path=/texts`);
    await waitForCount(2);
    await page.getByRole('button', { name: 'Open short.txt' }).click();
    await page.locator('#preview-dialog pre').waitFor();
    assert.equal((await page.locator('#preview-dialog pre').textContent()).length, 71);
    assert.equal(await page.locator('#preview-dialog .truncated').count(), 0);
    await page.keyboard.press('Escape');
    await page.getByRole('button', { name: 'Open long.txt' }).click();
    await page.locator('#preview-dialog .truncated').waitFor();
    assert.equal((await page.locator('#preview-dialog pre').textContent()).length, 65536);
    assert.equal(await page.locator('#preview-dialog .truncated').textContent(),
      'Only the first 64 KiB of 70 KiB are shown; download the file for the rest.');
    await page.keyboard.press('Escape');
  });

  it('(2) previews an empty file as empty, without an error', async () => {
    await apiUpload(server, '/texts/empty.txt', '');
    await page.getByRole('button', { name: 'Open empty.txt' }).waitFor();
    await page.getByRole('button', { name: 'Open empty.txt' }).click();
    await page.locator('#preview-dialog .empty-file').waitFor();
    assert.equal(await page.locator('#preview-dialog .empty-file').textContent(), 'This file is empty (0 bytes).');
    // The body also shows the file's reference (a random UUID, which may hold "416" inside a
    // group of hex digits): a status is a number of its own.
    assert.doesNotMatch(await page.locator('#preview-body').textContent(), /refused|error|\b416\b/i);
    // Also when the bytes are asked for: the 416 of an empty range reads as no text.
    const fetched = await page.evaluate(async (id) => (await import('/ui/api.js')).fetchTextStart(id),
      await page.locator('#file-list .item.file', { hasText: 'empty.txt' }).getAttribute('data-id'));
    assert.deepEqual(fetched, { text: '', truncated: false, total: 0 });
    await page.keyboard.press('Escape');
  });

  it('shows a grid of thumbnails and remembers the layout', async () => {
    ids.red = (await apiUpload(server, '/pictures/red.png', makePng(64, 48, { seed: 3 }), 'image/png')).id;
    await apiUpload(server, '/pictures/blue.png', makePng(48, 64, { seed: 5 }), 'image/png');
    await page.goto(`${server.base}/#/files?path=/pictures`);
    await waitForCount(2);
    await page.getByRole('button', { name: 'Grid' }).click();
    assert.equal(await page.getByRole('button', { name: 'Grid' }).getAttribute('aria-pressed'), 'true');
    // Thumbnails fit the asked size and are never scaled up: the 64×48 and 48×64 images keep theirs
    // (read in the same turn as the check that both have loaded).
    const loaded = await page.waitForFunction(() => {
      const imgs = [...document.querySelectorAll('#file-list[data-view="grid"] .thumb img')];
      return imgs.length === 2 && imgs.every((i) => i.complete && i.naturalWidth > 0)
        && imgs.map((i) => ({ src: i.getAttribute('src'), size: `${i.naturalWidth}x${i.naturalHeight}` }));
    });
    const thumbs = await loaded.jsonValue();
    assert.match(thumbs[0].src, /\/thumbnail\?w=.*&sig=.*&size=256$/);
    assert.deepEqual(thumbs.map((t) => t.size).sort(), ['48x64', '64x48']);
    // A refresh (as after every change in the feed) keeps the thumbnails shown: the same images,
    // neither blanked nor loaded again.
    await page.locator('#file-list .thumb img').evaluateAll((imgs) => imgs.forEach((i) => { i.dataset.kept = 'yes'; }));
    await page.evaluate(async () => (await import('/ui/files.js')).refreshAll());
    await waitForCount(2);
    assert.equal(await page.locator('#file-list .thumb.has-image img[data-kept="yes"]').count(), 2);
    await noViolations('25-files-grid-desktop');
    await page.reload();
    await page.locator('#file-list[data-view="grid"]').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Grid' }).getAttribute('aria-pressed'), 'true');
    await page.getByRole('button', { name: 'List' }).click();
    await page.locator('#file-list[data-view="list"]').waitFor();
  });

  it('selects several files and moves them, then deletes them, in bulk', async () => {
    await page.goto(`${server.base}/#/files?path=/bulk&q=file-0`);
    await waitForCount(9);
    await page.getByLabel('Select file-01.txt').check();
    await page.getByLabel('Select file-02.txt').check();
    await page.locator('#selection-count', { hasText: '2 files selected' }).waitFor();
    await page.getByRole('button', { name: 'Move…' }).click();
    await page.locator('#move-dialog').waitFor({ state: 'visible' });
    await page.getByLabel('Destination folder').fill('/archive');
    await noViolations('26-bulk-move-desktop');
    await page.locator('#move-ok').click();
    await page.locator('#move-dialog').waitFor({ state: 'hidden' });
    await page.getByText('Moved 2 files to /archive.').waitFor();
    await waitForCount(7);
    const archived = await api(server, 'GET', '/files?path_prefix=/archive&include_all_sessions=true');
    assert.deepEqual(archived.files.map((f) => f.path).sort(), ['/archive/file-01.txt', '/archive/file-02.txt']);

    await page.goto(`${server.base}/#/files?path=/archive`);
    await waitForCount(2);
    await page.getByLabel('Select page').check();
    await page.locator('#selection-count', { hasText: '2 files selected' }).waitFor();
    await page.getByRole('button', { name: 'Delete…' }).first().click();
    await page.locator('#confirm-dialog').waitFor({ state: 'visible' });
    assert.match(await page.locator('#confirm-text').textContent(), /Delete 2 files\? They go to the trash/);
    await page.locator('#confirm-ok').click();
    await page.getByText('Deleted 2 files.').waitFor();
    await page.locator('#files-empty[data-kind="empty"]').waitFor();
    const trash = await api(server, 'GET', '/trash');
    assert.ok(['/archive/file-01.txt', '/archive/file-02.txt'].every((p) => trash.files.some((f) => f.path === p)));
  });

  it('renames a file from its details, and shares it with a chosen expiry', async () => {
    await page.goto(`${server.base}/#/files?path=/bulk&q=file-03`);
    await waitForCount(1);
    await page.getByRole('button', { name: 'Open file-03.txt' }).click();
    await page.getByRole('button', { name: 'Rename or move…' }).click();
    await page.getByLabel('New path').fill('renamed.txt');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('#preview-title', { hasText: 'renamed.txt' }).waitFor();
    const moved = await api(server, 'GET', '/files?path_prefix=/bulk&include_all_sessions=true&q=renamed');
    assert.deepEqual(moved.files.map((f) => f.path), ['/bulk/renamed.txt']);

    await page.getByRole('button', { name: 'Share link…' }).click();
    await page.getByLabel('Expires after').selectOption({ label: '1 day' });
    await page.getByRole('button', { name: 'Create link' }).click();
    await page.waitForFunction(() => document.getElementById('share-url')?.value.length > 0);
    const url = await page.getByLabel('Share link').inputValue();
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/api\/workspace\/files\/[0-9a-f-]+\/download\?w=.*&exp=(\d+)&sig=.*&disposition=attachment$/);
    const exp = Number(/exp=(\d+)/.exec(url)[1]);
    const now = Date.now() / 1000;
    assert.ok(exp > now + 86_000 && exp < now + 86_800, 'expires in one day');
    const fetched = await fetch(url); // no token: the link alone
    assert.equal(fetched.status, 200);
    assert.equal(await fetched.text(), 'file 3\n');
    await page.getByRole('button', { name: 'Copy link' }).click();
    await page.getByText('Link copied.').waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), url);
    await noViolations('27-share-link-desktop');
    await page.keyboard.press('Escape');
  });

  it('shows the versions of a file and restores an older one; usage counts history', async () => {
    await apiUpload(server, '/docs/doc.txt', 'first draft\n');
    await apiUpload(server, '/docs/doc.txt', 'second draft\n');
    await page.goto(`${server.base}/#/files?path=/docs`);
    await waitForCount(1);
    await page.locator('#usage-text', { hasText: 'in versions and trash' }).waitFor();
    await page.getByRole('button', { name: 'Open doc.txt' }).click();
    await page.locator('#preview-dialog pre', { hasText: 'second draft' }).waitFor();
    await page.getByRole('button', { name: 'Versions' }).click();
    const versions = page.locator('.versions li');
    await versions.nth(1).waitFor();
    assert.deepEqual(await page.locator('.versions .version-label').allTextContents(), ['Version 2 (current)', 'Version 1']);
    await noViolations('28-versions-desktop');
    await page.getByRole('button', { name: 'Restore version 1' }).click();
    await page.locator('.versions .version-label', { hasText: 'Version 3 (current)' }).waitFor();
    await page.locator('#preview-dialog pre', { hasText: 'first draft' }).waitFor();
    await page.keyboard.press('Escape');
  });

  it('moves and deletes a folder', async () => {
    await page.goto(`${server.base}/#/files?path=/docs`);
    await page.goto(`${server.base}/#/files`);
    await page.getByRole('button', { name: 'Move folder docs' }).click();
    await page.getByLabel('New folder path').fill('/documents');
    await page.locator('#move-ok').click();
    await page.getByText('Moved 1 file from /docs to /documents.').waitFor();
    await page.getByRole('button', { name: 'Move folder documents' }).waitFor();
    await page.getByRole('button', { name: 'Delete folder documents' }).click();
    await page.locator('#confirm-ok').click();
    await page.getByText('Moved 1 file from /documents to the trash.').waitFor();
    await page.getByRole('button', { name: 'Move folder documents' }).waitFor({ state: 'detached' });
    assert.equal((await api(server, 'GET', '/files?path_prefix=/documents&include_all_sessions=true')).files.length, 0);
  });

  it('restores from the trash, purges one file and empties it', async () => {
    await page.getByRole('link', { name: 'Trash', exact: true }).click();
    await page.locator('#view-trash').waitFor({ state: 'visible' });
    const entry = (name) => page.locator('#trash-list .item', { hasText: name });
    await entry('doc.txt').waitFor();
    assert.equal(await page.locator('#trash-list .item').count(), 3);
    await noViolations('29-trash-desktop');
    await page.getByRole('button', { name: 'Restore doc.txt' }).click();
    await page.getByText('Restored doc.txt to /documents/doc.txt.').waitFor();
    await entry('doc.txt').waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Delete forever file-01.txt' }).click();
    await page.locator('#confirm-ok').click();
    await entry('file-01.txt').waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Empty trash…' }).click();
    await page.locator('#confirm-ok').click();
    await page.locator('#trash-empty-state', { hasText: 'The trash is empty.' }).waitFor();
    assert.equal((await api(server, 'GET', '/trash')).files.length, 0);
    const restored = await api(server, 'GET', '/files?path_prefix=/documents&include_all_sessions=true');
    assert.deepEqual(restored.files.map((f) => f.path), ['/documents/doc.txt']);
  });

  it('updates live: a file uploaded by another client appears without a reload, also after a dropped stream', async () => {
    await page.getByRole('link', { name: 'Files', exact: true }).click();
    await page.locator('#listing[aria-busy="false"]').waitFor();
    await page.locator('#live-state[data-state="live"]').waitFor();
    const loads = [];
    page.on('framenavigated', () => loads.push('navigated'));
    await apiUpload(server, '/live/from-elsewhere.txt', 'hello from another client');
    await page.getByRole('button', { name: 'Open from-elsewhere.txt' }).waitFor({ timeout: 10_000 });
    assert.deepEqual(loads, [], 'no reload');

    // The network drops: the stream ends, keeping the last event id; back online, it resumes after
    // that id, so a change made in between arrives (no reload, no gap).
    const resumed = page.waitForRequest((r) => r.url().endsWith('/api/workspace/events') && Boolean(r.headers()['last-event-id']));
    await page.evaluate(() => window.dispatchEvent(new Event('offline')));
    await page.locator('#live-state[data-state="offline"]').waitFor();
    await apiUpload(server, '/live/while-away.txt', 'written while the stream was down');
    await page.evaluate(() => window.dispatchEvent(new Event('online')));
    const request = await resumed;
    assert.match(request.headers()['last-event-id'], /^\d+$/);
    await page.getByRole('button', { name: 'Open while-away.txt' }).waitFor({ timeout: 10_000 });
    await page.locator('#live-state[data-state="live"]').waitFor();

    const parsed = await page.evaluate(async () => (await import('/ui/events.js')).parseSse(
      ': keep-alive\n\nid: 7\nevent: created\ndata: {"id":7}\n\nid: 8\nda'));
    assert.deepEqual(parsed, { events: [{ id: '7', type: 'created', data: '{"id":7}' }], tail: 'id: 8\nda' });
  });

  it('(6)(9) renders plain markdown with a table and a workspace image, and (3) renews an expired image link once', async () => {
    const expired = await api(server, 'POST', `/files/${ids.red}/link?expires_in=1`);
    await new Promise((r) => setTimeout(r, 2100));
    const stale = await fetch(`${server.base}${expired.url}`);
    assert.equal(stale.status, 403, 'the old link really is expired');

    let linkCalls = 0;
    let serveExpired = 1;
    await page.route(`**/api/workspace/files/${ids.red}/link*`, async (route) => {
      linkCalls += 1;
      if (linkCalls <= serveExpired) {
        await route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(expired) });
      } else {
        await route.continue();
      }
    });
    await page.getByRole('link', { name: 'Chat', exact: true }).click();
    const markdown = [
      '# Weekly report',
      '',
      'Sales went **up**. The chart:',
      '',
      `![sales chart](workspace://${ids.red})`,
      '',
      '| Region | Units | Note |',
      '|:-------|------:|:----:|',
      '| North  | 120   | `ok` |',
      '| South  | 80    | <b>raw</b> |',
    ].join('\n');
    await page.getByLabel(/Transcript/).fill(markdown);
    await page.getByRole('button', { name: 'Render transcript' }).click();
    await page.getByText('Shown as markdown (this is not a JSON list of messages).').waitFor();
    assert.equal(await page.locator('#chat-log h3').textContent(), 'Weekly report');
    assert.deepEqual(await page.locator('#chat-log table th').allTextContents(), ['Region', 'Units', 'Note']);
    assert.deepEqual(await page.locator('#chat-log table tbody tr').first().locator('td').allTextContents(), ['North', '120', 'ok']);
    assert.equal(await page.locator('#chat-log table tbody tr td').nth(1).getAttribute('class'), 'align-right');
    assert.equal(await page.locator('#chat-log table b').count(), 0, 'raw HTML in a cell stays text');
    assert.equal(await page.locator('#chat-log').textContent().then((t) => t.includes('|---')), false, 'no raw pipes');

    await page.waitForFunction(() => {
      const img = document.querySelector('#chat-log .ws-image img');
      return img && img.complete && img.naturalWidth > 0;
    });
    assert.equal(linkCalls, 2, 'one expired link, then one renewal');
    assert.equal(await page.locator('#chat-log .ws-image img').getAttribute('data-renewed'), '1');
    assert.equal(await page.locator('#chat-log .ws-badge').textContent(), BADGE);
    await noViolations('30-chat-markdown-desktop');

    // A link that stays broken: one renewal, then a clear broken-image state (no retry loop).
    linkCalls = 0;
    serveExpired = 99;
    await page.getByRole('button', { name: 'Render transcript' }).click();
    await page.locator('#chat-log .ws-broken').waitFor();
    assert.match(await page.locator('#chat-log .ws-broken').textContent(), /Image broken — the image could not be loaded, even with a fresh link/);
    await page.waitForTimeout(500);
    assert.equal(linkCalls, 2);
    await noViolations('31-chat-broken-image-desktop');
    await page.unroute(`**/api/workspace/files/${ids.red}/link*`);

    // The JSON transcript still works.
    await page.getByLabel(/Transcript/).fill(JSON.stringify([{ role: 'user', content: 'hi' }, { role: 'assistant', content: `![c](workspace://${ids.red})` }]));
    await page.getByRole('button', { name: 'Render transcript' }).click();
    await page.getByText('2 messages shown.').waitFor();
    await page.waitForFunction(() => document.querySelector('#chat-log .ws-image img')?.naturalWidth > 0);
  });

  it('never opened a JavaScript dialog, threw, or broke the content security policy', () => {
    assert.deepEqual(problems.dialogs, []);
    assert.deepEqual(problems.errors, []);
    // The expired links (403), the simulated outage (503) and the test's own byte request of an
    // empty file (416) log failed loads; nothing else may.
    const unexpected = problems.console.filter((m) => !/^Failed to load resource: .*status of (403|416|503)\b/.test(m));
    assert.deepEqual(unexpected, []);
  });
});
