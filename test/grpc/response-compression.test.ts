import assert from 'node:assert/strict';
import { connect as http2Connect, type IncomingHttpHeaders } from 'node:http2';
import { describe, test } from 'node:test';
import { deflateSync, gunzipSync, gzipSync } from 'node:zlib';
import { RosterClient } from '../../src/client/index.js';
import { FakeClock } from '../../src/core/clock.js';
import { Registry } from '../../src/core/registry.js';
import { createMetrics } from '../../src/grpc/metrics.js';
import { GetInstanceRequest, GetInstanceResponse, ListApplicationsRequest, ListApplicationsResponse } from '../../src/gen/roster/v1/registry_service.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { registration, WAIT_MS, withHarness } from './helpers.js';

const LIST = '/roster.v1.RegistryService/ListApplications';
const pad = (n: number): string => String(n).padStart(5, '0');

interface RawAnswer {
  readonly headers: IncomingHttpHeaders;
  readonly frames: { readonly compressed: boolean; readonly body: Buffer }[];
  readonly trailers: IncomingHttpHeaders;
}

/**
 * One gRPC call made with node:http2 itself, so the test sees what travels on the wire: the
 * response headers, each message frame's compressed flag and bytes, the trailers. `encoding`
 * compresses the request message the way gRPC clients do and names it in `grpc-encoding`.
 */
function rawCall(address: string, path: string, message: Uint8Array, encoding?: 'gzip' | 'deflate'): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(`http://${address}`);
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`no answer within ${WAIT_MS} ms`));
    }, WAIT_MS);
    session.on('error', reject);
    const body = encoding === 'gzip' ? gzipSync(message) : encoding === 'deflate' ? deflateSync(message) : Buffer.from(message);
    const frame = Buffer.alloc(5 + body.length);
    frame[0] = encoding ? 1 : 0;
    frame.writeUInt32BE(body.length, 1);
    body.copy(frame, 5);
    const req = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-accept-encoding': 'identity,gzip',
      ...(encoding ? { 'grpc-encoding': encoding } : {}),
    });
    let headers: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    const data: Buffer[] = [];
    req.on('response', (h) => (headers = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (chunk: Buffer) => data.push(chunk));
    req.on('error', reject);
    req.on('end', () => {
      clearTimeout(timer);
      session.close();
      const all = Buffer.concat(data);
      const frames: RawAnswer['frames'] = [];
      for (let at = 0; at < all.length; ) {
        const length = all.readUInt32BE(at + 1);
        frames.push({ compressed: all[at] === 1, body: all.subarray(at + 5, at + 5 + length) });
        at += 5 + length;
      }
      resolve({ headers, frames, trailers });
    });
    req.end(frame);
  });
}

const listRequest = ListApplicationsRequest.encode({ chunkSize: 0 }).finish();

describe('gzip-compressed responses', () => {
  test('a ListApplications request sent gzip-compressed is answered with gzip frames that decode to the plain answer', () =>
    withHarness({}, async ({ registry, address }) => {
      for (let i = 0; i < 2500; i++) registry.register(registration({ app: `app-${i % 7}`, instanceId: `i-${pad(i)}` }));
      const plain = await rawCall(address, LIST, listRequest);
      const zipped = await rawCall(address, LIST, listRequest, 'gzip');

      assert.equal(plain.headers['grpc-encoding'], 'identity');
      assert.equal(zipped.headers['grpc-encoding'], 'gzip');
      for (const answer of [plain, zipped]) assert.equal(answer.trailers['grpc-status'], '0');
      assert.equal(zipped.frames.length, 3);
      assert.ok(plain.frames.every((f) => !f.compressed));
      assert.ok(
        zipped.frames.every((f) => f.compressed && f.body[0] === 0x1f && f.body[1] === 0x8b),
        'gzip magic in every frame',
      );
      const decoded = zipped.frames.map((f) => ListApplicationsResponse.decode(gunzipSync(f.body)));
      assert.deepEqual(
        decoded,
        plain.frames.map((f) => ListApplicationsResponse.decode(f.body)),
      );
      assert.equal(
        decoded.reduce((sum, chunk) => sum + chunk.instances.length, 0),
        2500,
      );
      const bytes = (a: RawAnswer): number => a.frames.reduce((sum, f) => sum + f.body.length, 0);
      assert.ok(bytes(zipped) * 4 < bytes(plain), `gzip ${bytes(zipped)} bytes vs plain ${bytes(plain)}`);
    }));

  test('other encodings and other methods are answered uncompressed', () =>
    withHarness({}, async ({ registry, address }) => {
      registry.register(registration({ app: 'billing', instanceId: 'i-1' }));
      const deflated = await rawCall(address, LIST, listRequest, 'deflate');
      assert.equal(deflated.headers['grpc-encoding'], 'identity');
      assert.equal(ListApplicationsResponse.decode(deflated.frames[0]!.body).instances.length, 1);
      assert.ok(deflated.frames.every((f) => !f.compressed));

      const get = await rawCall(address, '/roster.v1.RegistryService/GetInstance', GetInstanceRequest.encode({ app: 'billing', instanceId: 'i-1' }).finish(), 'gzip');
      assert.equal(get.headers['grpc-encoding'], 'identity');
      assert.equal(get.trailers['grpc-status'], '0');
      assert.equal(GetInstanceResponse.decode(get.frames[0]!.body).instance?.instanceId, 'i-1');
    }));

  test("RosterClient's compression: 'gzip' reads the same snapshot in a fraction of the bytes", () =>
    withHarness({}, async ({ registry, server }) => {
      for (let i = 0; i < 3000; i++) registry.register(registration({ app: `app-${i % 5}`, instanceId: `i-${pad(i)}`, metadata: { index: String(i) } }));
      const counter = await TcpProxy.start(server.port);
      const plainClient = new RosterClient(counter.address, { compression: 'identity' });
      const gzipClient = new RosterClient(counter.address, { compression: 'gzip' });
      try {
        const plain = await plainClient.listApplications();
        const plainBytes = counter.takeBytesDown();
        const zipped = await gzipClient.listApplications();
        const zippedBytes = counter.takeBytesDown();
        assert.deepEqual(zipped, plain);
        assert.equal(zipped.instances.length, 3000);
        assert.ok(zippedBytes * 4 < plainBytes, `gzip read ${zippedBytes} bytes, plain read ${plainBytes}`);
        // Other calls of the gzip client stay on its plain channel and still work.
        assert.equal((await gzipClient.getInstance('app-0', 'i-00000')).instance?.instanceId, 'i-00000');
      } finally {
        plainClient.close();
        gzipClient.close();
        await counter.close();
      }
    }));

  test('full reads are counted by answer encoding and cache hit or miss', async () => {
    const clock = new FakeClock();
    const registry = new Registry({ clock });
    const metrics = createMetrics(registry);
    await withHarness({ observer: metrics.observer, prebuilt: { clock, registry } }, async ({ address }) => {
      registry.register(registration({ app: 'billing', instanceId: 'i-1' }));
      await rawCall(address, LIST, listRequest);
      await rawCall(address, LIST, listRequest, 'gzip');
      await rawCall(address, LIST, listRequest, 'gzip');
      registry.register(registration({ app: 'billing', instanceId: 'i-2' }));
      await rawCall(address, LIST, listRequest, 'gzip');
      const text = await metrics.render();
      const count = (encoding: string, cache: string): number => Number(new RegExp(`^roster_full_reads_total\\{encoding="${encoding}",cache="${cache}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
      assert.deepEqual({ identityMiss: count('identity', 'miss'), gzipHit: count('gzip', 'hit'), gzipMiss: count('gzip', 'miss') }, { identityMiss: 1, gzipHit: 2, gzipMiss: 1 });
    });
  });

  test('RosterClient refuses an unknown compression', () => {
    assert.throws(() => new RosterClient('127.0.0.1:1', { compression: 'br' as 'gzip' }), /compression must be 'gzip' or 'identity', got "br"/);
  });
});
