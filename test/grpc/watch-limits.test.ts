import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import pino from 'pino';
import type { WatchResponse } from '../../src/gen/roster/v1/registry_service.js';
import { registration } from '../core/fixtures.js';
import { waitFor } from '../support/wait.js';
import { startHarness, WAIT_MS } from './helpers.js';

/** A debug logger whose lines the test can wait for. */
function capturingLogger() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), saw: (msg: string) => lines.some((l) => l.includes(`"msg":"${msg}"`)) };
}

describe('Watch limits hold against clients that stop reading', () => {
  test('a paused watcher told to resync still counts against max_watchers until its stream is gone', async () => {
    const { logger, saw } = capturingLogger();
    const h = await startHarness({ logger, limits: { maxWatchers: 1, maxWatchBacklog: 100 } });
    try {
      const paused = h.client.watch({ app: '', vip: '', nodeId: '' });
      await new Promise<void>((resolve, reject) => {
        paused.once('data', () => resolve());
        paused.once('error', reject);
      });
      paused.pause();
      paused.on('error', () => undefined);

      // ~20 MB of changes: far beyond what the stream buffers and the HTTP/2 window hold.
      for (let i = 0; i < 20_000 && !saw('watch needs resync'); i++) {
        h.registry.register(registration({ instanceId: `i-${i}`, metadata: { blob: 'x'.repeat(1000) } }));
        if (i % 200 === 0) await new Promise((r) => setImmediate(r));
      }
      await waitFor('the paused watcher to be told to resync', () => saw('watch needs resync'));

      const refused = await new Promise<ServiceError>((resolve) => {
        const second = h.client.watch({ app: '', vip: '', nodeId: '' }, { deadline: Date.now() + 2_000 });
        second.on('data', () => undefined);
        second.once('error', resolve);
      });
      assert.equal(refused.code, status.RESOURCE_EXHAUSTED, 'the paused stream still holds its slot');

      paused.cancel();
      const accepted = await (async () => {
        const deadline = Date.now() + WAIT_MS;
        for (;;) {
          const third = h.client.watch({ app: '', vip: '', nodeId: '' });
          const first = await new Promise<WatchResponse | ServiceError>((resolve) => {
            third.once('data', resolve);
            third.once('error', resolve);
          });
          if (!(first instanceof Error)) {
            third.cancel();
            third.on('error', () => undefined);
            return first;
          }
          assert.equal(first.code, status.RESOURCE_EXHAUSTED);
          if (Date.now() > deadline) throw new Error('the slot was never freed');
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      assert.equal(accepted.progress, true, 'a new watcher is served once the paused one is gone');
    } finally {
      await h.close();
    }
  });
});
