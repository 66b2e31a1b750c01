import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { InstanceStatus } from '../../src/gen/roster/v1/instance.js';
import { call, protoInstance, registration } from '../grpc/helpers.js';
import { launchChromium, type Chromium } from './chromium.js';
import { startDashboardNode } from './harness.js';

/** Whatever the page reports as broken: console errors, uncaught exceptions, failed or off-node requests. */
function watchForErrors(page: Page, base: string): string[] {
  const errors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => errors.push(`exception: ${err.message}`));
  page.on('requestfailed', (req) => {
    // The event stream is cut when the page closes; anything else failing is a bug.
    if (!req.url().endsWith('/dashboard/api/events')) errors.push(`request failed: ${req.url()} ${req.failure()?.errorText}`);
  });
  page.on('request', (req) => {
    if (!req.url().startsWith(base)) errors.push(`request outside the node: ${req.url()}`);
  });
  page.on('response', (res) => {
    if (res.status() >= 400) errors.push(`HTTP ${res.status()}: ${res.url()}`);
  });
  return errors;
}

/** Opens the dashboard and waits until it follows the event stream and shows the apps. */
async function open(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.locator('#live[data-state="live"]').waitFor({ timeout: 10_000 });
  await page.locator('#apps-range').filter({ hasText: /of/ }).waitFor({ timeout: 10_000 });
}

describe('dashboard in a real browser (Debian chromium)', () => {
  let chromium: Chromium;
  before(async () => {
    chromium = await launchChromium();
  });
  after(() => chromium?.close());

  test('loads with no console errors and only talks to the node', async () => {
    const node = await startDashboardNode();
    const page = await chromium.context.newPage();
    try {
      for (let i = 0; i < 5; i++) node.registry.register(registration({ instanceId: `i-${i}`, status: i === 4 ? 'DOWN' : 'UP' }));
      const errors = watchForErrors(page, node.base);
      await open(page, `${node.base}/`);
      assert.equal(await page.locator('#node-id').textContent(), 'node-under-test');
      assert.equal(await page.locator('#size').textContent(), '5');
      assert.equal(await page.locator('#apps tr').count(), 1);
      // Open the application and its instances: the links and metadata render, still no errors.
      await page.getByRole('button', { name: 'billing' }).click();
      await page.locator('#instances tr[data-id="i-4"]').waitFor();
      assert.equal(await page.locator('#instances tr').count(), 5);
      assert.equal(await page.locator('#instances tr[data-id="i-4"] .badge').first().textContent(), 'DOWN');
      assert.equal(await page.locator('#instances tr[data-id="i-0"] a', { hasText: 'health' }).getAttribute('href'), 'http://billing-1:8080/health');
      await page.waitForTimeout(300); // let any late error surface
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
      await node.close();
    }
  });

  test('an instance registered over gRPC appears within a second, without a reload', async () => {
    const node = await startDashboardNode();
    const page = await chromium.context.newPage();
    try {
      node.registry.register(registration());
      await open(page, `${node.base}/#app=billing`);
      await page.locator('#instances tr[data-id="i-1"]').waitFor();
      // The page notes (wall clock, shared with this process) when each row shows up, so the
      // measurement excludes Playwright's polling; `sameDocument` would be lost on a reload.
      await page.evaluate(`(() => {
        const seen = {};
        const check = () => {
          seen.app ??= document.querySelector('#apps tr[data-app="checkout"]') ? Date.now() : undefined;
          seen.instance ??= document.querySelector('#instances tr[data-id="i-2"]') ? Date.now() : undefined;
        };
        new MutationObserver(check).observe(document.body, { childList: true, subtree: true });
        Object.assign(globalThis, { seen, sameDocument: true });
      })()`);
      await call(node.client.register.bind(node.client), { instance: protoInstance({ app: 'checkout', instanceId: 'co-1' }) });
      const appRegistered = Date.now();
      await call(node.client.register.bind(node.client), { instance: protoInstance({ instanceId: 'i-2' }) });
      const instanceRegistered = Date.now();
      await page.locator('#apps tr[data-app="checkout"]').waitFor({ timeout: 10_000 });
      await page.locator('#instances tr[data-id="i-2"]').waitFor({ timeout: 10_000 });
      const seen = (await page.evaluate('globalThis.seen')) as { app: number; instance: number };
      assert.ok(seen.app - appRegistered < 1000, `the application appeared ${seen.app - appRegistered} ms after its Register returned`);
      assert.ok(seen.instance - instanceRegistered < 1000, `the instance appeared ${seen.instance - instanceRegistered} ms after its Register returned`);
      assert.equal(await page.evaluate(() => (globalThis as { sameDocument?: boolean }).sameDocument), true, 'no reload happened');
      assert.equal(await page.locator('#apps-status').textContent(), '2 applications, 3 instances');
    } finally {
      await page.close();
      await node.close();
    }
  });

  test('a status override set in the UI is what gRPC GetInstance returns; cancelling a confirmation changes nothing', async () => {
    const node = await startDashboardNode();
    const page = await chromium.context.newPage();
    try {
      await call(node.client.register.bind(node.client), { instance: protoInstance() });
      await open(page, `${node.base}/#app=billing`);
      const row = page.locator('#instances tr[data-id="i-1"]');
      await row.waitFor();

      // Cancel instance, then "Keep as is": nothing happens.
      const revision = node.registry.revision;
      await row.getByLabel('Action on i-1').selectOption('cancel');
      await row.getByRole('button', { name: 'Apply the chosen action to i-1' }).click();
      const dialog = page.getByRole('dialog');
      await dialog.waitFor();
      assert.match((await dialog.textContent()) ?? '', /Cancel billing\/i-1\?/);
      await page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'hidden' });
      assert.equal(node.registry.revision, revision, 'declined: nothing changed');

      // Override to OUT_OF_SERVICE, confirmed.
      await row.getByLabel('Action on i-1').selectOption('set:OUT_OF_SERVICE');
      await row.getByRole('button', { name: 'Apply the chosen action to i-1' }).click();
      await dialog.getByRole('button', { name: 'Override to OUT_OF_SERVICE' }).click();
      await row.locator('td:nth-child(3) .badge', { hasText: 'OUT OF SERVICE' }).waitFor({ timeout: 5000 });
      const got = await call(node.client.getInstance.bind(node.client), { app: 'billing', instanceId: 'i-1' });
      assert.equal(got.instance?.status, InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE);
      assert.equal(got.instance?.overriddenStatus, InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE);

      // Clear it again from the UI.
      await row.getByLabel('Action on i-1').selectOption('clear');
      await row.getByRole('button', { name: 'Apply the chosen action to i-1' }).click();
      await dialog.getByRole('button', { name: 'Clear override' }).click();
      await row.locator('td:nth-child(2) .badge', { hasText: 'UNKNOWN' }).waitFor({ timeout: 5000 });
      const cleared = await call(node.client.getInstance.bind(node.client), { app: 'billing', instanceId: 'i-1' });
      assert.equal(cleared.instance?.overriddenStatus, InstanceStatus.INSTANCE_STATUS_UNSPECIFIED);
    } finally {
      await page.close();
      await node.close();
    }
  });

  test('the self-preservation banner shows while it holds and goes when renewals recover', async () => {
    const node = await startDashboardNode();
    const page = await chromium.context.newPage();
    try {
      const { clock, registry } = node;
      const ids = Array.from({ length: 1000 }, (_, i) => `i-${i}`);
      for (const id of ids) registry.register(registration({ instanceId: id }));
      const renew = (alive: string[], seconds: number): void => {
        for (let t = 0; t < seconds; t += 30) {
          clock.advance(30_000);
          for (const id of alive) registry.heartbeat('billing', id);
        }
      };
      renew(ids, 60);
      await open(page, `${node.base}/`);
      const banner = page.getByRole('alert');
      assert.equal(await banner.isVisible(), false);
      renew(ids.slice(300), 180); // 30 % go silent at once: a network fault, not 300 deaths
      assert.equal(registry.stats().selfPreservation, true);
      await banner.waitFor({ state: 'visible', timeout: 5000 });
      assert.match((await banner.textContent()) ?? '', /Self-preservation is on: eviction is paused.*300 leases have lapsed/s);
      assert.equal(await page.locator('#size').textContent(), '1,000', 'nothing evicted');
      for (const id of ids.slice(0, 300)) registry.register(registration({ instanceId: id, lastDirtyTimestamp: clock.wallNow() }));
      renew(ids, 120);
      assert.equal(registry.stats().selfPreservation, false);
      await banner.waitFor({ state: 'hidden', timeout: 5000 });
    } finally {
      await page.close();
      await node.close();
    }
  });

  test('100k instances: the first page and a filter come quickly, and the DOM holds one page', async () => {
    const node = await startDashboardNode();
    const page = await chromium.context.newPage();
    try {
      for (let i = 0; i < 100_000; i++) {
        node.registry.register(registration({ app: `app-${i % 500}`, instanceId: `host-${i}:8080`, ipAddr: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, zone: `zone-${i % 3}` }));
      }
      const errors = watchForErrors(page, node.base);
      const started = performance.now();
      await open(page, `${node.base}/`);
      const firstPage = performance.now() - started;
      assert.equal(await page.locator('#size').textContent(), '100,000');
      assert.equal(await page.locator('#apps tr').count(), 50, 'one page of applications');

      const filterStarted = performance.now();
      await page.getByLabel('Search applications').fill('app-42');
      await page.locator('#apps-status', { hasText: '11 of 500 applications match' }).waitFor({ timeout: 5000 });
      const filtered = performance.now() - filterStarted;
      assert.equal(await page.locator('#apps tr').count(), 11); // app-42 and app-420..429

      await page.getByRole('button', { name: 'app-42', exact: true }).click();
      await page.locator('#instances-range', { hasText: '1–50 of 200' }).waitFor({ timeout: 5000 });
      await page.getByRole('button', { name: 'Next' }).last().click();
      await page.locator('#instances-range', { hasText: '51–100 of 200' }).waitFor({ timeout: 5000 });
      const elements = await page.locator('*').count();
      assert.ok(elements < 5000, `the DOM holds pages, not the registry (${elements} elements)`);
      // Generous bounds (a loaded 2-core CI box); npm run bench reports the real numbers.
      assert.ok(firstPage < 5000, `first page after ${Math.round(firstPage)} ms`);
      assert.ok(filtered < 2000, `filter after ${Math.round(filtered)} ms`);
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
      await node.close();
    }
  });
});
