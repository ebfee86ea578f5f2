// Size limit and quota errors as the UI shows them, against a server with tiny limits.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { chooseFiles, launchBrowser, newWatchedPage, screenshot, signIn, startServer } from '../lib/harness.js';

describe('upload limits in the web UI', () => {
  let server;
  let browser;
  let page;
  let problems;

  before(async () => {
    server = await startServer({ WS_QUOTA_BYTES: '3000', WS_MAX_FILE_SIZE: '2000' });
    browser = await launchBrowser();
    ({ page, problems } = await newWatchedPage(browser));
    await signIn(page, server.base, server.token);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('explains a file over the size limit (413 too_large)', async () => {
    await chooseFiles(page, { name: 'big.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(2500, 1) });
    const item = page.locator('.upload-item[data-state="error"]', { hasText: 'big.bin' });
    await item.waitFor();
    assert.match(await item.locator('.upload-message').textContent(), /^File too large: it is bigger than the server's size limit per file \(.*2000 bytes\)\.$/);
  });

  it('explains a full quota (413 quota_exceeded) and shows usage', async () => {
    await chooseFiles(page, { name: 'a.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(1500, 2) });
    await page.locator('.upload-item[data-state="done"]', { hasText: 'a.bin' }).waitFor();
    await page.locator('#usage-text', { hasText: '1 file' }).waitFor();
    assert.equal(await page.locator('#usage-bar').getAttribute('aria-valuenow'), '50');

    await chooseFiles(page, { name: 'b.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(1600, 3) });
    const item = page.locator('.upload-item[data-state="error"]', { hasText: 'b.bin' });
    await item.waitFor();
    assert.match(await item.locator('.upload-message').textContent(), /^Storage quota exceeded: there is not enough space left in your workspace\. Delete some files and try again/);
    assert.equal(await item.getAttribute('role'), null);
    assert.equal(await item.locator('.upload-message').getAttribute('role'), 'alert');
    assert.equal(await page.locator('#file-list .item.file').count(), 1, 'nothing partial was listed');
    await screenshot(page, '10-quota-and-size-errors');
  });

  it('pages through the list with the cursor', async () => {
    await page.evaluate(() => {
      const data = new DataTransfer();
      for (let i = 0; i < 11; i += 1) data.items.add(new File([`file ${i}`], `f${String(i).padStart(2, '0')}.txt`, { type: 'text/plain' }));
      const zone = document.getElementById('drop-zone');
      for (const type of ['dragenter', 'dragover', 'drop']) {
        zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: data }));
      }
    });
    await page.getByText('11 uploaded.').waitFor();
    await page.getByLabel('Sort').selectOption({ label: 'Name A–Z' });
    await page.getByLabel('Per page').selectOption('10');
    await page.waitForFunction(() => document.querySelectorAll('#file-list .item.file').length === 10);
    await page.locator('#page-info', { hasText: 'Page 1 · 10 files' }).waitFor();
    assert.equal(await page.locator('#page-info').textContent(), 'Page 1 · 10 files');
    assert.equal(await page.locator('#page-prev').isDisabled(), true);
    await page.getByRole('button', { name: 'Next page' }).click();
    await page.locator('#page-info', { hasText: 'Page 2' }).waitFor();
    await page.waitForFunction(() => document.querySelectorAll('#file-list .item.file').length === 2);
    assert.deepEqual(await page.locator('#file-list .item-name').allTextContents(), ['f09.txt', 'f10.txt']);
    assert.equal(await page.locator('#page-next').isDisabled(), true);
    await page.getByRole('button', { name: 'Previous page' }).click();
    await page.locator('#page-info', { hasText: 'Page 1' }).waitFor();
    await page.waitForFunction(() => document.querySelectorAll('#file-list .item.file').length === 10);
    assert.equal(await page.locator('#file-list .item-name').first().textContent(), 'a.bin');
  });

  it('had no dialogs or errors', () => {
    assert.deepEqual(problems.dialogs, []);
    assert.deepEqual(problems.errors, []);
  });
});
