import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { RosterClient } from '../../src/client/index.js';
import { registration } from '../core/fixtures.js';
import { call, rejectsWith, withHarness } from './helpers.js';

/** 1 KB of metadata per instance: 5,000 of them are ~5.5 MB, beyond a default client's 4 MiB. */
const heavy = (app: string, i: number) => registration({ app, instanceId: `i-${String(i).padStart(5, '0')}`, vipAddress: 'heavy.vip', metadata: { blob: 'x'.repeat(1000) } });

describe("GetApplication and ListByVip answer in pages within a default client's 4 MiB", () => {
  test('a 5,000-instance application with 1 KB metadata each comes in pages, every instance exactly once', () =>
    withHarness({}, async ({ client, registry }) => {
      for (let i = 0; i < 5000; i++) registry.register(heavy('big', i));
      registry.register(registration({ app: 'small', vipAddress: 'heavy.vip' }));

      const seen: string[] = [];
      let pages = 0;
      for (let token = '', first = true; first || token !== ''; first = false) {
        const page = await call(client.getApplication.bind(client), { app: 'big', pageSize: 0, pageToken: token });
        seen.push(...page.instances.map((i) => i.instanceId));
        token = page.nextPageToken;
        assert.ok(++pages <= 10, 'bounded number of pages');
      }
      assert.ok(pages >= 2, `several pages (got ${pages})`);
      assert.equal(seen.length, 5000);
      assert.equal(new Set(seen).size, 5000);

      const vipPage = await call(client.listByVip.bind(client), { vip: 'heavy.vip', secure: false, pageSize: 100, pageToken: '' });
      assert.equal(vipPage.instances.length, 100);
      assert.notEqual(vipPage.nextPageToken, '');
    }));

  test('a page token stays right when instances come and go between pages', () =>
    withHarness({}, async ({ client, registry }) => {
      for (let i = 0; i < 10; i++) registry.register(heavy('app', i));
      const first = await call(client.getApplication.bind(client), { app: 'app', pageSize: 4, pageToken: '' });
      assert.deepEqual(
        first.instances.map((i) => i.instanceId),
        ['i-00000', 'i-00001', 'i-00002', 'i-00003'],
      );
      registry.cancel('app', 'i-00001');
      registry.cancel('app', 'i-00004');
      const second = await call(client.getApplication.bind(client), { app: 'app', pageSize: 4, pageToken: first.nextPageToken });
      assert.deepEqual(
        second.instances.map((i) => i.instanceId),
        ['i-00005', 'i-00006', 'i-00007', 'i-00008'],
      );
      const last = await call(client.getApplication.bind(client), { app: 'app', pageSize: 4, pageToken: second.nextPageToken });
      assert.deepEqual(
        last.instances.map((i) => i.instanceId),
        ['i-00009'],
      );
      assert.equal(last.nextPageToken, '');
    }));

  test('the TypeScript client follows the pages for its caller', () =>
    withHarness({}, async ({ address, registry }) => {
      for (let i = 0; i < 5000; i++) registry.register(heavy('big', i));
      const roster = new RosterClient(address);
      try {
        assert.equal((await roster.getApplication('big')).instances.length, 5000);
        assert.equal((await roster.listByVip('heavy.vip')).instances.length, 5000);
      } finally {
        roster.close();
      }
    }));

  test('a bad page_size or page_token is refused naming the field', () =>
    withHarness({}, async ({ client }) => {
      await rejectsWith(call(client.getApplication.bind(client), { app: 'a', pageSize: 5001, pageToken: '' }), status.INVALID_ARGUMENT, /^page_size: /);
      await rejectsWith(call(client.getApplication.bind(client), { app: 'a', pageSize: 0, pageToken: 'garbage' }), status.INVALID_ARGUMENT, /^page_token: /);
      await rejectsWith(call(client.listByVip.bind(client), { vip: 'v', secure: false, pageSize: 0, pageToken: 'W1sxXV0' }), status.INVALID_ARGUMENT, /^page_token: /);
    }));
});
