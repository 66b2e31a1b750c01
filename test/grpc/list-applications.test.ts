import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { ListApplicationsResponse } from '../../src/gen/roster/v1/registry_service.js';
import { readAll, registration, StreamReader, withHarness } from './helpers.js';

const key = (app: string, id: string): string => `${app}/${id}`;
const pad = (n: number): string => String(n).padStart(6, '0');

describe('ListApplications', () => {
  test('25k instances reach a client at the default 4 MiB limit, from one consistent snapshot', () =>
    withHarness({}, async ({ client, registry }) => {
      const total = 25_000;
      const expected: string[] = [];
      for (let i = 0; i < total; i++) {
        const app = `app-${pad(i % 37)}`;
        const instanceId = `i-${pad(i)}`;
        registry.register(registration({ app, instanceId, metadata: { index: String(i) } }));
        expected.push(key(app, instanceId));
      }
      expected.sort();

      const reader = new StreamReader<ListApplicationsResponse>(client.listApplications({ chunkSize: 0 }));
      const chunks = [await reader.next()];
      registry.register(registration({ app: 'late', instanceId: 'x' }));
      registry.cancel(expected[0]!.split('/')[0]!, expected[0]!.split('/')[1]!);
      for (;;) {
        const more = await reader.next().catch(() => undefined);
        if (!more) break;
        chunks.push(more);
      }
      assert.equal(await reader.ended(), undefined);

      assert.equal(chunks.length, 25, 'the default chunk is 1000 instances');
      for (const chunk of chunks) {
        assert.equal(chunk.revision, total);
        assert.equal(chunk.reconcileHash, `UP_${total}_`);
        assert.equal(chunk.totalInstances, total);
        assert.equal(chunk.instances.length, 1000);
      }
      const got = chunks.flatMap((c) => c.instances.map((i) => key(i.app, i.instanceId)));
      assert.deepEqual(got, expected, 'every instance once, ordered by (app, instance_id), none added or removed since');
    }));

  test('an empty registry sends exactly one chunk with no instances', () =>
    withHarness({}, async ({ client }) => {
      const chunks = await readAll(client.listApplications({ chunkSize: 0 }));
      assert.deepEqual(chunks, [{ revision: 0, reconcileHash: '', totalInstances: 0, instances: [], nodeId: '' }]);
    }));

  test('chunk_size sets the chunk length; above 5000 it is INVALID_ARGUMENT', () =>
    withHarness({}, async ({ client, registry }) => {
      for (let i = 0; i < 20; i++) registry.register(registration({ instanceId: `i-${pad(i)}` }));
      registry.setStatusOverride('billing', `i-${pad(3)}`, 'OUT_OF_SERVICE');
      const chunks = await readAll(client.listApplications({ chunkSize: 7 }));
      assert.deepEqual(
        chunks.map((c) => c.instances.length),
        [7, 7, 6],
      );
      assert.ok(chunks.every((c) => c.reconcileHash === 'OUT_OF_SERVICE_1_UP_19_' && c.revision === 21));
      await assert.rejects(readAll(client.listApplications({ chunkSize: 5001 })), (err: grpc.ServiceError) => {
        assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
        assert.match(err.details, /^chunk_size: /);
        return true;
      });
    }));

  test('chunks are cut by size too, so bulky instances still fit a default client', () =>
    withHarness({}, async ({ client, registry }) => {
      const bulky = Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`k${i}`, String(i).padEnd(1000, 'x')]));
      for (let i = 0; i < 1500; i++) registry.register(registration({ instanceId: `i-${pad(i)}`, metadata: bulky }));
      const chunks = await readAll(client.listApplications({ chunkSize: 5000 }));
      assert.ok(chunks.length >= 6, `~22 MB must take several chunks, got ${chunks.length}`);
      assert.equal(
        chunks.reduce((n, c) => n + c.instances.length, 0),
        1500,
      );
      assert.deepEqual(chunks[0]!.instances[0]!.metadata, bulky);
    }));
});
