import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2, { type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { releaseClosedStream } from '../../src/grpc/closed-stream.js';

/** A released stream still reads as the closed, destroyed stream it is, keeps who it is, and lets go of its own state. */
describe('releaseClosedStream', () => {
  const streams: ServerHttp2Stream[] = [];
  let server: http2.Http2Server;
  let client: http2.ClientHttp2Session;
  before(async () => {
    server = http2.createServer();
    server.on('stream', (stream) => {
      streams.push(stream);
      stream.on('close', () => releaseClosedStream(stream));
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });
  after(async () => {
    client.close();
    await new Promise((resolve) => server.close(resolve));
  });

  const request = async (): Promise<string> => {
    const req = client.request({ ':path': '/' });
    let body = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    await once(req, 'close');
    return body;
  };

  test('released streams share the first one\'s closed state and keep their ids', async () => {
    for (let i = 0; i < 3; i++) assert.equal(await request(), 'ok');
    await nextTurn();
    await nextTurn();
    const [first, second, third] = streams as [ServerHttp2Stream, ServerHttp2Stream, ServerHttp2Stream];
    const state = (s: ServerHttp2Stream) => s as unknown as { _readableState: unknown; _writableState: unknown };
    assert.equal(state(second)._readableState, state(first)._readableState);
    assert.equal(state(third)._writableState, state(first)._writableState);
    assert.deepEqual(streams.map((s) => s.id), [1, 3, 5]);
    for (const s of streams) assert.ok(s.destroyed && s.closed);
  });

  test('what a late caller does to a released stream is refused as on any destroyed stream', async () => {
    assert.equal(await request(), 'ok');
    await nextTurn();
    await nextTurn();
    const late = streams.at(-1)!;
    const written = await new Promise<Error | null | undefined>((resolve) => late.write('late', resolve));
    assert.ok(written instanceof Error);
    assert.doesNotThrow(() => late.destroy());
    assert.equal(await request(), 'ok', 'the server still answers');
  });
});
