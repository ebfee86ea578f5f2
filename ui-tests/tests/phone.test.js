// The web UI on a phone (390×844, touch): (5) of issue #19. No view scrolls sideways, sign-out
// stays on screen, dialogs fit, long names are cut with an ellipsis that keeps the extension, and
// every view passes axe-core; each view is screenshotted.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  PHONE, api, apiUpload, checkView, launchBrowser, makePng, newWatchedPage, sidewaysOverflow, signIn, startServer,
} from '../lib/harness.js';

const LONG = 'quarterly-revenue-forecast-for-the-northern-region-final-final-v2-reviewed.png';

describe('web UI on a phone (390×844)', () => {
  let server;
  let browser;
  let page;
  let problems;
  let imageId;

  /** The common checks of (5) and the accessibility check, with a screenshot. */
  async function fits(name) {
    assert.equal(await sidewaysOverflow(page), 0, `${name}: no sideways scroll`);
    assert.deepEqual(await checkView(page, name), [], `axe on ${name}`);
  }

  async function inViewport(locator, what) {
    const box = await locator.boundingBox();
    assert.ok(box, `${what} is shown`);
    assert.ok(box.x >= 0 && box.x + box.width <= PHONE.width + 0.5, `${what} fits across (${box.x}+${box.width})`);
  }

  before(async () => {
    server = await startServer();
    imageId = (await apiUpload(server, `/sessions/chat-7/${LONG}`, makePng(120, 90, { seed: 11 }), 'image/png')).id;
    await apiUpload(server, '/sessions/chat-7/notes.md', '# Notes\n\n| a | b |\n|---|---|\n| 1 | 2 |\n');
    await apiUpload(server, '/reports/2026/summary-with-a-rather-long-name.txt', 'summary\n');
    browser = await launchBrowser();
    ({ page, problems } = await newWatchedPage(browser, { viewport: PHONE, mobile: true }));
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('signs in on a phone', async () => {
    await page.goto(`${server.base}/`);
    await page.locator('#view-signin').waitFor({ state: 'visible' });
    await fits('40-sign-in-phone');
    await signIn(page, server.base, server.token);
  });

  it('(5) lists files without sideways scroll, sign-out reachable, long names cut keeping the extension', async () => {
    await page.locator('#file-list .item.file').nth(2).waitFor();
    await inViewport(page.getByRole('button', { name: 'Sign out' }), 'Sign out');
    const row = page.locator('#file-list .item.file', { hasText: 'quarterly' });
    const name = row.locator('.item-name');
    const shape = await name.evaluate((el) => {
      const stem = el.querySelector('.stem');
      const ext = el.querySelector('.ext');
      const lineHeight = parseFloat(getComputedStyle(el).lineHeight) || 20;
      return {
        oneLine: el.getBoundingClientRect().height < lineHeight * 1.6,
        cut: stem.scrollWidth > stem.clientWidth,
        ellipsis: getComputedStyle(stem).textOverflow,
        ext: ext?.textContent,
        extVisible: ext ? ext.getBoundingClientRect().right <= window.innerWidth : false,
      };
    });
    assert.deepEqual(shape, { oneLine: true, cut: true, ellipsis: 'ellipsis', ext: '.png', extVisible: true });
    assert.equal(await name.getAttribute('title'), LONG, 'the whole name is one hover or long-press away');
    assert.equal(await page.locator('#sidebar').evaluate((d) => d.open), false, 'the folder panel starts folded');
    await fits('41-files-list-phone');

    await page.getByRole('button', { name: 'Grid' }).click();
    await page.waitForFunction(() => [...document.querySelectorAll('#file-list .thumb img')].some((i) => i.complete && i.naturalWidth > 0));
    await fits('42-files-grid-phone');
    await page.getByRole('button', { name: 'List' }).click();

    await page.locator('#sidebar summary').click();
    await page.locator('#session-list a[title="/sessions/chat-7"]').waitFor();
    await fits('43-folders-phone');
    await page.locator('#session-list a[title="/sessions/chat-7"]').click();
    await page.locator('#breadcrumbs li', { hasText: 'chat-7' }).waitFor();
    await page.locator('#file-list .item.file').nth(1).waitFor();
    await fits('44-session-phone');
  });

  it('(5) fits the details, move and confirm dialogs on screen', async () => {
    await page.getByRole('button', { name: `Open ${LONG}` }).click();
    const dialog = page.locator('#preview-dialog');
    await page.waitForFunction(() => document.querySelector('#preview-dialog img')?.complete);
    await inViewport(dialog, 'the details dialog');
    await fits('45-details-phone');
    await page.getByRole('button', { name: 'Share link…' }).click();
    await page.getByRole('button', { name: 'Create link' }).click();
    await page.waitForFunction(() => document.getElementById('share-url')?.value.length > 0);
    await inViewport(dialog, 'the details dialog with the share panel');
    await inViewport(page.getByRole('button', { name: 'Copy link' }), 'the copy button');
    await fits('46-share-phone');
    await page.getByRole('button', { name: 'Close' }).click();

    await page.getByLabel(`Select ${LONG}`).check();
    await page.getByRole('button', { name: 'Move…' }).click();
    await inViewport(page.locator('#move-dialog'), 'the move dialog');
    await fits('47-move-phone');
    await page.getByRole('button', { name: 'Cancel' }).click();

    await page.getByRole('button', { name: 'Delete notes.md' }).click();
    await inViewport(page.locator('#confirm-dialog'), 'the confirm dialog');
    await fits('48-confirm-phone');
    await page.locator('#confirm-ok').click();
    await page.getByText('Deleted notes.md.').waitFor();
  });

  it('(5) shows the trash and the chat on a phone', async () => {
    await page.getByRole('link', { name: 'Trash', exact: true }).click();
    await page.locator('#trash-list .item', { hasText: 'notes.md' }).waitFor();
    await inViewport(page.getByRole('button', { name: 'Restore notes.md' }), 'Restore');
    await fits('49-trash-phone');

    await page.getByRole('link', { name: 'Chat', exact: true }).click();
    await page.getByLabel(/Transcript/).fill([
      `Here is the forecast: ![forecast](workspace://${imageId})`,
      '',
      '| Region | Units | A long column heading that wraps |',
      '|---|---:|---|',
      '| North | 120 | a cell with quite a lot of text in it, more than fits |',
    ].join('\n'));
    await page.getByRole('button', { name: 'Render transcript' }).click();
    await page.waitForFunction(() => document.querySelector('#chat-log .ws-image img')?.naturalWidth > 0);
    await page.locator('#chat-log table').waitFor();
    await fits('50-chat-phone');
  });

  it('signs out from a phone', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#view-signin').waitFor({ state: 'visible' });
    assert.equal(await page.evaluate(() => sessionStorage.getItem('workspace.token')), null);
    await api(server, 'GET', '/usage'); // the server is still fine
  });

  it('had no dialogs, errors or console errors', () => {
    assert.deepEqual(problems.dialogs, []);
    assert.deepEqual(problems.errors, []);
    assert.deepEqual(problems.console, []);
  });
});
