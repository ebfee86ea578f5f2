// The seed's image-generation plan end to end: a self-hosted, OpenAI-compatible images API on
// loopback (a tiny fake started here), the real server configured with only OPENAI_BASE_URL (and a
// key), `run_block openai_image_generation` called in a chat session over the HTTP /mcp endpoint,
// the image stored in the session's folder and handed back as a workspace:// id (never base64),
// listed by `list_workspace_files`, and rendered by the web UI's chat view with its badge.
// Both answers of the images API are covered: `b64_json`, and a `url` on the API's own origin.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';

import { launchBrowser, makePng, newWatchedPage, screenshot, signIn, startServer } from '../lib/harness.js';

const BADGE = 'AI cannot see this image';
const SESSION = 'chat-img';
const API_KEY = 'sk-ui-test';
const REFERENCE = /^workspace:\/\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})#image\/png$/;

/** The fake images API: `b64_json` for "a cat", a URL on itself for "a dog". */
async function startFakeOpenAi() {
  const cat = makePng(320, 240, { seed: 7 });
  const dog = makePng(256, 160, { seed: 9 });
  const requests = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method, url: req.url, authorization: req.headers.authorization, body });
      const reply = (status, type, payload) => {
        res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(payload) });
        res.end(payload);
      };
      if (req.method === 'POST' && req.url === '/v1/images/generations') {
        const { prompt } = JSON.parse(body);
        const own = `http://127.0.0.1:${server.address().port}`;
        if (prompt === 'a cat') {
          return reply(200, 'application/json', JSON.stringify({ created: 0, data: [{ b64_json: cat.toString('base64'), revised_prompt: 'a small cat' }] }));
        }
        if (prompt === 'a dog') {
          return reply(200, 'application/json', JSON.stringify({ created: 0, data: [{ url: `${own}/files/dog.png` }] }));
        }
        return reply(400, 'application/json', JSON.stringify({ error: { message: 'unknown prompt' } }));
      }
      if (req.method === 'GET' && req.url === '/files/dog.png') return reply(200, 'image/png', dog);
      return reply(404, 'text/plain', 'not found');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    baseUrl: `http://127.0.0.1:${server.address().port}`,
    requests,
    cat,
    dog,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

describe('image generation through a self-hosted API, into the chat view', () => {
  let api;
  let server;
  let browser;
  let page;
  let problems;

  /** One `tools/call` over the streamable-HTTP MCP endpoint, in the chat session. */
  async function callTool(name, args) {
    const response = await fetch(`${server.base}/mcp?session=${SESSION}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${server.token}`,
        accept: 'application/json, text/event-stream',
        'content-type': 'application/json',
        'mcp-protocol-version': '2025-06-18',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } }),
    });
    assert.equal(response.status, 200);
    const message = await response.json();
    assert.ok(message.result, JSON.stringify(message));
    return message.result;
  }

  async function generate(prompt) {
    const result = await callTool('run_block', { block_id: 'openai_image_generation', input: { prompt } });
    assert.equal(result.isError, false, JSON.stringify(result));
    const image = result.structuredContent.output.image;
    const match = REFERENCE.exec(image);
    assert.ok(match, `a workspace:// id reference, not base64 or a path: ${image.slice(0, 120)}`);
    return { image, id: match[1], result };
  }

  const generated = {};

  before(async () => {
    api = await startFakeOpenAi();
    // Nothing else: no allow-list, the configured endpoint is trusted as such.
    server = await startServer({ OPENAI_BASE_URL: api.baseUrl, OPENAI_API_KEY: API_KEY });
    browser = await launchBrowser();
    ({ page, problems } = await newWatchedPage(browser));
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    await api?.close();
  });

  it('run_block stores a b64_json answer in the session folder as a workspace:// id', async () => {
    generated.cat = await generate('a cat');
    assert.equal(generated.cat.result.structuredContent.output.revised_prompt, 'a small cat');
    assert.ok(JSON.stringify(generated.cat.result).length < 2000, 'no image bytes in the tool result');
    const call = api.requests.find((r) => r.url === '/v1/images/generations');
    assert.equal(call.authorization, `Bearer ${API_KEY}`);
    assert.equal(JSON.parse(call.body).prompt, 'a cat');

    const info = await (await fetch(`${server.base}/api/workspace/files/${generated.cat.id}`, {
      headers: { authorization: `Bearer ${server.token}` },
    })).json();
    assert.match(info.path, new RegExp(`^/sessions/${SESSION}/[^/]+\\.png$`));
    assert.equal(info.source, 'execution');
    const bytes = Buffer.from(await (await fetch(`${server.base}/api/workspace/files/${generated.cat.id}/download`, {
      headers: { authorization: `Bearer ${server.token}` },
    })).arrayBuffer());
    assert.ok(bytes.equals(api.cat), 'the stored bytes are the generated image');
  });

  it('run_block fetches a url answer on the API\'s own origin', async () => {
    generated.dog = await generate('a dog');
    assert.ok(api.requests.some((r) => r.method === 'GET' && r.url === '/files/dog.png'), 'the image URL was fetched');
    assert.notEqual(generated.dog.id, generated.cat.id);
  });

  it('list_workspace_files lists both in the session folder', async () => {
    const listed = await callTool('list_workspace_files', {});
    assert.equal(listed.isError, false);
    const files = listed.structuredContent.files;
    for (const { id } of [generated.cat, generated.dog]) {
      const file = files.find((f) => f.id === id);
      assert.ok(file, `${id} is listed`);
      assert.ok(file.path.startsWith(`/sessions/${SESSION}/`), file.path);
      assert.equal(file.mime_type, 'image/png');
    }
  });

  it('the chat view renders both images with the badge', async () => {
    await signIn(page, server.base, server.token);
    await page.getByRole('link', { name: 'Chat', exact: true }).click();
    await page.locator('#view-chat').waitFor({ state: 'visible' });
    const transcript = [
      { role: 'user', content: 'Draw a cat, then a dog.' },
      {
        role: 'assistant',
        content: [
          'Here they are:',
          '',
          `![a generated cat](${generated.cat.image})`,
          '',
          `![a generated dog](${generated.dog.image})`,
        ].join('\n'),
      },
    ];
    await page.getByLabel(/Transcript/).fill(JSON.stringify(transcript, null, 2));
    await page.getByRole('button', { name: 'Render transcript' }).click();

    await page.waitForFunction(() => {
      const imgs = [...document.querySelectorAll('#chat-log .ws-image img')];
      return imgs.length === 2 && imgs.every((i) => i.complete && i.naturalWidth > 0);
    });
    const images = page.locator('#chat-log .ws-image img');
    const sizes = await images.evaluateAll((imgs) => imgs.map((i) => [i.alt, i.naturalWidth, i.naturalHeight]));
    assert.deepEqual(sizes, [['a generated cat', 320, 240], ['a generated dog', 256, 160]]);
    const badges = page.locator('#chat-log .ws-image .ws-badge');
    assert.equal(await badges.count(), 2);
    for (const badge of await badges.all()) {
      assert.ok(await badge.isVisible());
      assert.equal(await badge.textContent(), BADGE);
    }
    assert.equal(await page.locator('#chat-log .ws-missing').count(), 0);
    await screenshot(page, '20-chat-generated-images');
    assert.deepEqual(problems.dialogs, []);
    assert.deepEqual(problems.errors, []);
    assert.deepEqual(problems.console, []);
  });
});
