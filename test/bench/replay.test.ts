import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Instance } from '../../src/gen/roster/v1/instance.js';
import { RegistryServiceService, WatchRequest } from '../../src/gen/roster/v1/registry_service.js';
import { registrationFromProto } from '../../src/grpc/convert.js';
import { benchInstance } from '../../bench/instances.js';
import { httpFrame, PreparedReplay, Replay, type WatchSpec } from '../../bench/replay.js';
import { startHarness, type Harness } from '../grpc/helpers.js';

const register = RegistryServiceService.register;
const registerFrame = (i: number): Buffer => register.requestSerialize({ instance: Instance.fromPartial(benchInstance(i, 'replay')) });
/** Write k of a watch job: instance `w-<k>` of `app`. */
const watchedFrame = (app: string, k: number): Buffer => register.requestSerialize({ instance: Instance.fromPartial({ ...benchInstance(k, app), app, instanceId: `w-${k}` }) });
const watchOf = (address: string, app: string, method: string = RegistryServiceService.watch.path): WatchSpec => ({
  target: address,
  method,
  request: RegistryServiceService.watch.requestSerialize(WatchRequest.fromPartial({ app })),
  clientStreams: false,
  readyField: 0,
  idPath: [1, 3, 2],
  perSecond: 500,
});

describe('bench/replay (the Go load generator) against a real Roster server', () => {
  let h: Harness;
  let replay: Replay;

  before(async () => {
    replay = Replay.start(); // builds the binary when it is missing or stale
    h = await startHarness();
  });

  after(async () => {
    replay.close();
    await h.close();
  });

  it('replays encoded Register calls, each once, and reports its own CPU', async () => {
    const count = 20_000;
    const loaded = await replay.load(
      { kind: 'grpc', target: h.address, method: register.path },
      Array.from({ length: count }, (_, i) => registerFrame(i)),
    );
    assert.equal(loaded.count, count);
    const result = await replay.run(loaded, 8, 300);
    assert.equal(result.failed, 0, result.firstError);
    assert.ok(result.ok > 0 && result.ok < count, `ok ${result.ok}`);
    assert.equal(result.latencies.length, result.ok);
    assert.ok(result.cpuSeconds > 0);
    assert.equal(h.registry.records().length, result.ok, 'one distinct instance per call');
  });

  it('reports running out of requests as failures and stops, rather than repeating them', async () => {
    const loaded = await replay.load({ kind: 'grpc', target: h.address, method: register.path }, [registerFrame(100_000), registerFrame(100_001)]);
    const result = await replay.run(loaded, 4, 5_000);
    assert.equal(result.ok, 2);
    assert.ok(result.failed >= 1);
    assert.match(result.firstError ?? '', /ran out of requests after 2/);
    assert.ok(result.seconds < 4, `took ${result.seconds} s`);
  });

  it('reports an unknown method as failed calls, not a hang', async () => {
    const loaded = await replay.load(
      { kind: 'grpc', target: h.address, method: '/roster.v1.RegistryService/NoSuchMethod' },
      Array.from({ length: 5_000 }, (_, i) => registerFrame(200_000 + i)),
    );
    const result = await replay.run(loaded, 4, 200);
    assert.equal(result.ok, 0);
    assert.ok(result.failed > 0);
    assert.match(result.firstError ?? '', /Unimplemented/);
  });

  it('sends HTTP frames with their method, path, headers and body; a status of 300 or more fails', async () => {
    const seen: { method: string; url: string; type: string | undefined; body: string }[] = [];
    const server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, type: req.headers['content-type'], body });
        res.writeHead(req.url!.includes('missing') ? 404 : 204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/eureka`;
      const frames = [
        httpFrame({ method: 'POST', path: '/apps/A', headers: { 'content-type': 'application/json' }, body: '{"instance":{}}' }),
        httpFrame({ method: 'PUT', path: '/apps/A/missing?status=UP', headers: {}, body: '' }),
      ];
      const result = await replay.run(await replay.load({ kind: 'http', target: base }, frames), 1, 5_000);
      assert.equal(result.ok, 1);
      assert.equal(result.failed, 2); // the 404, then running out
      assert.match(result.firstError ?? '', /HTTP 404 from PUT/);
      assert.deepEqual(seen, [
        { method: 'POST', url: '/eureka/apps/A', type: 'application/json', body: '{"instance":{}}' },
        { method: 'PUT', url: '/eureka/apps/A/missing?status=UP', type: undefined, body: '' },
      ]);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('times open-loop writes to their events on a watch, each write once', async () => {
    const loaded = await replay.load(
      { kind: 'grpc', target: h.address, method: register.path },
      Array.from({ length: 202 }, (_, k) => watchedFrame('watched', k)),
    );
    // Writes to another app must not be taken for the watched app's events.
    await h.registry.register(registrationFromProto(Instance.fromPartial({ ...benchInstance(1, 'other'), app: 'other', instanceId: 'w-1' })));
    const result = await replay.watch(loaded, watchOf(h.address, 'watched'), 400);
    assert.equal(result.failed, 0, result.firstError);
    assert.equal(result.issued, 200); // 500/s for 0.4 s, after write 0
    assert.equal(result.skipped, 0);
    assert.equal(result.ok, 200);
    assert.equal(result.events, 200);
    assert.equal(result.latencies.length, 200);
    assert.ok(
      result.latencies.every((ms) => ms > 0 && ms < 5_000),
      `latencies ${Math.min(...result.latencies)}-${Math.max(...result.latencies)} ms`,
    );
    assert.ok(result.sustainedPerSecond > 250, `sustained ${result.sustainedPerSecond}/s`);
    assert.equal(h.registry.records().filter((r) => r.record.app === 'watched').length, 201);
  });

  it('fails a watch job whose stream ends before it is established, without writing', async () => {
    const loaded = await replay.load({ kind: 'grpc', target: h.address, method: register.path }, [watchedFrame('never', 0), watchedFrame('never', 1)]);
    await assert.rejects(replay.watch(loaded, watchOf(h.address, 'never', '/roster.v1.RegistryService/NoSuchWatch'), 200), /the watch was not established: the stream ended \(Unimplemented/);
    assert.equal(h.registry.records().filter((r) => r.record.app === 'never').length, 0);
  });

  it('runs a prepared job only, matched by its key', async () => {
    const prepared = new PreparedReplay();
    try {
      const target = { kind: 'grpc', target: h.address, method: register.path } as const;
      await assert.rejects(prepared.run('a', 1, 100), /must be prepared first/);
      assert.equal(await prepared.prepare('a', target, 50, (k) => registerFrame(300_000 + k)), 50);
      await assert.rejects(prepared.run('b', 1, 100), /must be prepared first/);
      await prepared.prepare('a', target, 50, (k) => registerFrame(300_000 + k));
      const result = await prepared.run('a', 2, 10_000);
      assert.ok(result.failed >= 1); // ran out, long before the 10 s
      assert.equal(result.ok, 50);
    } finally {
      prepared.close();
    }
  });
});
