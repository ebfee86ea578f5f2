// The web UI in real headless Chromium against the real server binary: sign-in, upload with
// progress, preview, chat rendering of workspace:// images with the badge, delete and the
// placeholder, conflicts, and a hostile file name that must stay text.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  checkView, chooseFiles, launchBrowser, makePng, newWatchedPage, screenshot, startServer,
} from '../lib/harness.js';

const BADGE = 'AI cannot see this image';
const HOSTILE = '<img src=x onerror=alert(1)>.png';
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

describe('workspace web UI', () => {
  let server;
  let browser;
  let page;
  let problems;
  let catId;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    ({ page, problems } = await newWatchedPage(browser));
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('serves the page and signs in with the printed token, refusing a bad one', async () => {
    await page.goto(`${server.base}/`);
    await page.locator('#view-signin').waitFor({ state: 'visible' });
    assert.deepEqual(await checkView(page, '01-sign-in'), [], 'axe finds nothing on the sign-in view');

    await page.getByLabel('Access token').fill('not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That token was refused').waitFor();
    assert.equal(await page.locator('#view-files').isVisible(), false);

    // Keyboard: Tab from the token field reaches the button, which shows a visible focus ring.
    await page.getByLabel('Access token').fill(server.token);
    await page.getByLabel('Access token').focus();
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = document.activeElement;
      const style = getComputedStyle(el);
      return { text: el.textContent, outline: style.outlineStyle, width: parseFloat(style.outlineWidth) };
    });
    assert.equal(focused.text, 'Sign in');
    assert.notEqual(focused.outline, 'none');
    assert.ok(focused.width >= 2, `focus ring is visible (${focused.width}px)`);
    await page.keyboard.press('Enter');
    await page.locator('#view-files').waitFor({ state: 'visible' });
    assert.equal(await page.evaluate(() => sessionStorage.getItem('workspace.token')), server.token);
    await page.locator('#usage-text', { hasText: 'used' }).waitFor();
    assert.match(await page.locator('#usage-text').textContent(), /0 B of 250 MiB used · 0 files/);
  });

  it('uploads a PNG through the file chooser with the progress bar reaching 100%, and lists it', async () => {
    const png = makePng(640, 480, { noise: true, seed: 7 });
    assert.ok(png.length > 500_000, 'big enough to need several progress events');
    await chooseFiles(page, { name: 'cat.png', mimeType: 'image/png', buffer: png });

    const item = page.locator('.upload-item', { hasText: 'cat.png' });
    await item.and(page.locator('[data-state="done"]')).waitFor({ timeout: 30_000 });
    assert.equal(await item.locator('progress').evaluate((p) => p.value), 100);
    assert.equal(await item.locator('.percent').textContent(), '100%');
    assert.ok(Number(await item.getAttribute('data-events')) >= 1, 'driven by upload progress events');
    assert.equal(await item.locator('.upload-message').textContent(), 'Uploaded to /cat.png');

    const row = page.locator('#file-list .item.file', { hasText: 'cat.png' });
    await row.waitFor();
    catId = await row.getAttribute('data-id');
    assert.equal(await row.locator('.item-name').textContent(), 'cat.png');
    assert.match(await row.locator('.size').textContent(), /KiB|MiB/);
    assert.match(await row.locator('time').textContent(), /^\d{4}-\d\d-\d\d \d\d:\d\d$/);
    await page.locator('#usage-text', { hasText: '1 file' }).waitFor();
    assert.ok(Number(await page.locator('#usage-bar').getAttribute('aria-valuenow')) >= 0);
    await screenshot(page, '02-files');
  });

  it('previews the image and closes the preview with the keyboard', async () => {
    await page.getByRole('button', { name: 'Open cat.png' }).click();
    const dialog = page.locator('#preview-dialog');
    await dialog.waitFor({ state: 'visible' });
    const img = dialog.locator('img');
    await img.waitFor();
    await page.waitForFunction(() => document.querySelector('#preview-dialog img')?.complete);
    assert.equal(await img.evaluate((i) => i.naturalWidth), 640);
    assert.match(await img.getAttribute('src'), /\/download\?w=.*&sig=/, 'loaded through a signed link');
    assert.equal(await page.locator('#preview-title').textContent(), 'cat.png');
    assert.deepEqual(await checkView(page, '03-preview-image'), [], 'axe finds nothing on the preview');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
  });

  it('uploads a text file by drag and drop and previews its text', async () => {
    await page.evaluate(() => {
      const data = new DataTransfer();
      data.items.add(new File(['# Notes\nline two <b>not bold</b>\n'], 'notes.txt', { type: 'text/plain' }));
      const zone = document.getElementById('drop-zone');
      for (const type of ['dragenter', 'dragover', 'drop']) {
        zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: data }));
      }
    });
    await page.locator('.upload-item[data-state="done"]', { hasText: 'notes.txt' }).waitFor();
    await page.getByRole('button', { name: 'Open notes.txt' }).click();
    const pre = page.locator('#preview-dialog pre');
    await pre.waitFor();
    assert.equal(await pre.textContent(), '# Notes\nline two <b>not bold</b>\n');
    assert.equal(await page.locator('#preview-dialog b').count(), 0, 'text is not parsed as HTML');
    assert.equal(await page.locator('#preview-dialog .truncated').count(), 0, 'a short file is shown whole');
    await screenshot(page, '04-preview-text');
    await page.locator('#preview-close').click();
    await page.locator('#preview-dialog').waitFor({ state: 'hidden' });
  });

  it('searches by part of a name on Enter, and clears the search', async () => {
    await page.getByLabel('Name contains').fill('OTES');
    await page.getByLabel('Name contains').press('Enter');
    await page.waitForFunction(() => document.querySelectorAll('#file-list .item.file').length === 1);
    assert.equal(await page.locator('#file-list .item-name').first().textContent(), 'notes.txt');
    assert.match(await page.locator('#scope').textContent(), /name contains “OTES”/);
    await page.getByRole('button', { name: 'Clear', exact: true }).click();
    await page.waitForFunction(() => document.querySelectorAll('#file-list .item.file').length === 2);
  });

  it('renders a chat transcript: the referenced image loads with the badge, markdown stays safe', async () => {
    await page.getByRole('link', { name: 'Chat', exact: true }).click();
    await page.locator('#view-chat').waitFor({ state: 'visible' });
    const transcript = [
      { role: 'user', content: 'Draw me a **cat**, please.' },
      {
        role: 'assistant',
        content: [
          'Here it is:',
          '',
          `![a cat](workspace://${catId})`,
          '',
          `The same file as a bare reference: workspace://${catId}#image/png`,
          '',
          '- raw HTML stays text: <img src=x onerror=alert(1)>',
          '- [a script link](javascript:alert(1)) is not followed',
          '- `code` and _emphasis_',
          '',
          `A reference to nothing: ![gone](workspace://${UNKNOWN_ID})`,
        ].join('\n'),
      },
    ];
    await page.getByLabel(/Transcript/).fill(JSON.stringify(transcript, null, 2));
    await page.getByRole('button', { name: 'Render transcript' }).click();

    const images = page.locator('#chat-log .ws-image img');
    await page.waitForFunction(() => {
      const imgs = [...document.querySelectorAll('#chat-log .ws-image img')];
      return imgs.length === 2 && imgs.every((i) => i.complete);
    });
    for (const width of await images.evaluateAll((imgs) => imgs.map((i) => i.naturalWidth))) {
      assert.ok(width > 0, 'the <img> loaded');
    }
    assert.equal(await images.first().getAttribute('alt'), 'a cat');
    const badges = page.locator('#chat-log .ws-image .ws-badge');
    assert.equal(await badges.count(), 2);
    for (const badge of await badges.all()) {
      assert.ok(await badge.isVisible());
      assert.equal(await badge.textContent(), BADGE);
    }

    const missing = page.locator('#chat-log .ws-missing');
    await missing.waitFor();
    assert.match(await missing.textContent(), /File unavailable — not found or deleted/);

    const body = page.locator('#chat-log .msg-assistant .msg-body');
    assert.match(await body.textContent(), /raw HTML stays text: <img src=x onerror=alert\(1\)>/);
    assert.equal(await page.locator('#chat-log img[src="x"]').count(), 0);
    assert.equal(await page.locator('#chat-log a[href^="javascript"]').count(), 0);
    assert.equal(await page.locator('#chat-log .msg-user strong').textContent(), 'cat');
    await screenshot(page, '05-chat');
  });

  it('shows a clear message when an upload conflicts with an existing file (409)', async () => {
    await page.getByRole('link', { name: 'Files', exact: true }).click();
    await page.locator('#view-files').waitFor({ state: 'visible' });
    await page.locator('#listing[aria-busy="false"]').waitFor();
    await chooseFiles(page, { name: 'cat.png', mimeType: 'image/png', buffer: makePng(8, 8) });
    const item = page.locator('.upload-item[data-state="error"]', { hasText: 'cat.png' });
    await item.waitFor();
    assert.match(await item.locator('.upload-message').textContent(),
      /A file already exists at \/cat\.png\. Tick “Replace existing files” to overwrite it/);
    await page.locator('#files-status[data-kind="error"]').waitFor();
    await screenshot(page, '06-conflict');
  });

  it('deletes after confirmation, and the chat then shows a placeholder', async () => {
    const row = page.locator('#file-list .item.file', { hasText: 'cat.png' });
    await page.getByRole('button', { name: 'Delete cat.png' }).click();
    const dialog = page.locator('#confirm-dialog');
    await dialog.waitFor({ state: 'visible' });
    assert.match(await page.locator('#confirm-text').textContent(), /Delete “cat\.png” at \/cat\.png\?/);
    assert.deepEqual(await checkView(page, '07-confirm-delete'), [], 'axe finds nothing on the confirmation');
    await page.keyboard.press('Escape'); // cancel
    await dialog.waitFor({ state: 'hidden' });
    await page.getByText('Nothing deleted.').waitFor();
    assert.equal(await row.count(), 1);

    await page.getByRole('button', { name: 'Delete cat.png' }).click();
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByText('Deleted cat.png.').waitFor();
    await row.waitFor({ state: 'detached' });

    await page.getByRole('link', { name: 'Chat', exact: true }).click();
    await page.waitForFunction(() => document.querySelectorAll('#chat-log .ws-missing').length === 3);
    assert.equal(await page.locator('#chat-log .ws-image img').count(), 0);
    const placeholders = await page.locator('#chat-log .ws-missing').allTextContents();
    assert.ok(placeholders.every((t) => t.includes('not found or deleted')), placeholders.join(' | '));
    assert.ok(placeholders.some((t) => t.includes(`workspace://${catId}`)));
    await screenshot(page, '08-chat-after-delete');
  });

  it('shows a hostile file name as text and runs nothing', async () => {
    await page.getByRole('link', { name: 'Files', exact: true }).click();
    await chooseFiles(page, { name: HOSTILE, mimeType: 'image/png', buffer: makePng(16, 16) });
    await page.locator('.upload-item[data-state="done"]', { hasText: HOSTILE }).waitFor();
    const row = page.locator('#file-list .item.file', { hasText: HOSTILE });
    await row.waitFor();
    assert.equal(await row.locator('.item-name').textContent(), HOSTILE);
    assert.equal(await row.locator('.item-name').getAttribute('title'), HOSTILE);
    await page.getByRole('button', { name: `Open ${HOSTILE}` }).click();
    await page.waitForFunction(() => document.querySelector('#preview-dialog img')?.complete);
    assert.equal(await page.locator('#preview-title').textContent(), HOSTILE);
    assert.match(await page.locator('#preview-body dd').first().textContent(), /^\/<img src=x onerror=alert\(1\)>\.png$/);
    await page.keyboard.press('Escape');
    // The grid view and the folder tree show the name too.
    await page.getByRole('button', { name: 'Grid' }).click();
    await row.locator('.thumb').waitFor();
    await page.waitForTimeout(300);
    assert.equal(await page.locator('img[src="x"]').count(), 0, 'no element was made from the name');
    await page.getByRole('button', { name: 'List' }).click();
    await screenshot(page, '09-hostile-name');
  });

  it('renders hostile markdown into allowed elements only', async () => {
    const result = await page.evaluate(async () => {
      const { renderMarkdown } = await import('/ui/markdown.js');
      const inputs = [
        '<script>alert(1)</script>',
        '<img src=x onerror=alert(1)>',
        '[x](javascript:alert(1)) [y](JAVASCRIPT:alert(1)) [z](data:text/html,<script>alert(1)</script>)',
        '![i](javascript:alert(1)) ![j](https://example.invalid/a.png) ![k](data:image/svg+xml,<svg onload=alert(1)>)',
        '<a href="javascript:alert(1)">a</a> <iframe src=x></iframe> <svg onload=alert(1)>',
        '**<b onmouseover=alert(1)>x</b>** _<i>y</i>_ `<code>` ~~<s>z</s>~~',
        '```html\n<script>alert(1)</script>\n```',
        '> <style>body{display:none}</style>\n> - <form action=x><input></form>',
        '[ok](https://example.invalid/?q=<script>) https://example.invalid/"onmouseover="alert(1)',
        'workspace://not-a-uuid workspace://../../etc',
        '*'.repeat(5000) + '_'.repeat(5000) + '['.repeat(2000) + '`'.repeat(3000),
        '| <img src=x onerror=alert(1)> | [a](javascript:alert(1)) |\n|---|---|\n| <script>x</script> | ![i](data:image/svg+xml,<svg>) |',
        '|'.repeat(3000) + '\n' + '|-'.repeat(1500),
      ];
      const allowed = new Set(['P', 'BR', 'STRONG', 'EM', 'DEL', 'CODE', 'PRE', 'A', 'UL', 'OL', 'LI', 'BLOCKQUOTE',
        'H3', 'H4', 'H5', 'H6', 'HR', 'SPAN', 'DIV', 'TABLE', 'THEAD', 'TBODY', 'TR', 'TH', 'TD']);
      const bad = [];
      for (const input of inputs) {
        const root = document.createElement('div');
        root.append(renderMarkdown(input, { media: (ref) => document.createTextNode(`[media ${ref.raw}]`) }));
        for (const el of root.querySelectorAll('*')) {
          if (!allowed.has(el.tagName)) bad.push(`${el.tagName} from ${input.slice(0, 40)}`);
          for (const attr of el.attributes) {
            if (/^on/i.test(attr.name) || attr.name === 'style' || attr.name === 'src') bad.push(`${attr.name} on ${el.tagName}`);
            if (attr.name === 'href' && !/^(https?:|mailto:)/.test(attr.value)) bad.push(`href ${attr.value}`);
          }
        }
      }
      const sample = document.createElement('div');
      sample.append(renderMarkdown(inputs[1]));
      return { bad, text: sample.textContent };
    });
    assert.deepEqual(result.bad, []);
    assert.equal(result.text, '<img src=x onerror=alert(1)>');
  });

  it('never opened a JavaScript dialog, threw, or broke the content security policy', () => {
    assert.deepEqual(problems.dialogs, [], 'no alert/confirm/prompt');
    assert.deepEqual(problems.errors, [], 'no uncaught errors');
    // The refused token (401), the unknown reference (404) and the conflict (409) log their
    // failed requests; nothing else may reach the console.
    const unexpected = problems.console.filter((m) => !/^Failed to load resource: .*status of (401|404|409)\b/.test(m));
    assert.deepEqual(unexpected, [], 'no console errors (CSP violations show up here)');
  });
});
