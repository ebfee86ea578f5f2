// A flow through the orval-generated client against the real server (scripts/client-test.sh):
// typed uploads (the generated form sends `file` first), listing, info, download and a byte
// range compared byte for byte, a signed link used without a token, typed error bodies, delete
// and usage. Exits non-zero at the first surprise.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { configure } from './fetcher';
import {
  ListOrder,
  ListSort,
  createLink,
  deleteFile,
  downloadFile,
  getFile,
  getUsage,
  listFiles,
  uploadFile,
} from './generated/workspace';

/** Narrows a generated response union to the status the flow expects, or fails with its body. */
function expectStatus<R extends { status: number; data: unknown }, S extends R['status']>(
  response: R,
  status: S,
  what: string,
): Extract<R, { status: S }> {
  assert.equal(response.status, status, `${what}: ${JSON.stringify(response.data)}`);
  return response as Extract<R, { status: S }>;
}

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
}

async function bytesOf(blob: Blob): Promise<Buffer> {
  return Buffer.from(await blob.arrayBuffer());
}

async function main(): Promise<void> {
  const baseUrl = env('WORKSPACE_URL');
  configure({ baseUrl, token: env('WORKSPACE_TOKEN') });

  // 200 KiB: above the inline threshold, so the body streams into a blob while the fields that
  // follow it in the form are still unread.
  const bytes = Buffer.alloc(200 * 1024);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + 7) % 251;
  const file = new File([bytes], 'data.bin', { type: 'application/octet-stream' });
  const created = expectStatus(
    await uploadFile({ file, path: 'flows/data.bin', session_id: 'ts-flow', overwrite: false }),
    201,
    'upload',
  );
  const info = created.data;
  assert.equal(info.path, '/sessions/ts-flow/flows/data.bin');
  assert.equal(info.size_bytes, bytes.length);
  assert.equal(info.source, 'upload');
  assert.equal(created.headers.get('location'), `/api/workspace/files/${info.id}`);

  // A small text file, named by its filename (no path), with a trailing boolean field.
  const note = expectStatus(
    await uploadFile({ file: new File(['hello from orval'], 'note.txt', { type: 'text/plain' }), overwrite: true }),
    201,
    'upload note',
  ).data;
  assert.equal(note.path, '/note.txt');
  assert.equal(note.mime_type, 'text/plain');

  // The same path again without overwrite: a typed 409.
  const conflict = expectStatus(
    await uploadFile({ file: new File(['x'], 'x.bin'), path: 'flows/data.bin', session_id: 'ts-flow' }),
    409,
    'conflicting upload',
  );
  assert.equal(conflict.data.error, 'conflict');
  assert.match(conflict.data.message, /flows\/data\.bin/);

  const listed = expectStatus(
    await listFiles({ include_all_sessions: true, sort: ListSort.size, order: ListOrder.desc }),
    200,
    'list',
  ).data;
  assert.deepEqual(
    listed.files.map((f) => f.id),
    [info.id, note.id],
  );
  assert.equal(listed.next_cursor ?? null, null);

  const got = expectStatus(await getFile(info.id), 200, 'info').data;
  assert.equal(got.checksum, info.checksum);

  const whole = expectStatus(await downloadFile(info.id), 200, 'download');
  assert.ok((await bytesOf(whole.data)).equals(bytes), 'downloaded bytes equal the upload');
  assert.equal(whole.headers.get('etag'), `"${info.checksum}"`);
  const text = expectStatus(await downloadFile(note.id, { disposition: 'inline' }), 200, 'download note');
  assert.equal(await text.data.text(), 'hello from orval');

  const range = expectStatus(
    await downloadFile(info.id, undefined, { headers: { Range: 'bytes=70000-70099' } }),
    206,
    'range',
  );
  assert.ok((await bytesOf(range.data)).equals(bytes.subarray(70000, 70100)), 'range bytes');
  assert.equal(range.headers.get('content-range'), `bytes 70000-70099/${bytes.length}`);

  // A signed link works without a token; the same download without it is a typed 401.
  const link = expectStatus(await createLink(info.id, { expires_in: 120 }), 200, 'link').data;
  const query = new URL(link.url, baseUrl).searchParams;
  const signed = expectStatus(
    await downloadFile(
      info.id,
      { w: query.get('w') ?? '', exp: Number(query.get('exp')), sig: query.get('sig') ?? '' },
      { credentials: 'omit' },
    ),
    200,
    'signed download',
  );
  assert.ok((await bytesOf(signed.data)).equals(bytes), 'signed download bytes');
  const anonymous = expectStatus(await downloadFile(info.id, undefined, { credentials: 'omit' }), 401, 'no token');
  assert.equal(anonymous.data.error, 'unauthorized');

  const missing = expectStatus(await getFile(randomUUID()), 404, 'unknown id');
  assert.equal(missing.data.error, 'not_found');

  expectStatus(await deleteFile(info.id), 204, 'delete');
  expectStatus(await getFile(info.id), 404, 'deleted file');

  const usage = expectStatus(await getUsage(), 200, 'usage').data;
  assert.equal(usage.live_bytes, note.size_bytes);
  assert.equal(usage.file_count, 1);
  assert.equal(usage.history_bytes, bytes.length, 'the deleted file is in the trash');
  console.log('typescript client flow: ok');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
