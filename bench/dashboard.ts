/**
 * The dashboard at 100k instances, in Debian's chromium: how long until the first page of
 * applications is on screen, and how long a search takes to narrow the list. The suite's
 * server holds 100k generated instances over 500 apps (bench/instances.ts).
 */
import type { Page } from 'playwright-core';
import { launchChromium } from '../test/dashboard/chromium.js';
import { median, timeEach } from './harness.js';
import type { Context, Measurement } from './scenarios.js';

/** The app search waits this long after the last keystroke (static/app.js): part of what a user waits. */
const SEARCH_DEBOUNCE_MS = 120;

async function withPage<T>(use: (page: Page) => Promise<T>): Promise<T> {
  const chromium = await launchChromium();
  try {
    return await use(await chromium.context.newPage());
  } finally {
    await chromium.close();
  }
}

async function openDashboard(page: Page, ctx: Context): Promise<void> {
  await page.goto(`http://127.0.0.1:${ctx.server.httpPort}/`);
  await page.locator('#apps tr').nth(49).waitFor({ timeout: 30_000 });
  await page.locator('#live[data-state="live"]').waitFor({ timeout: 30_000 });
}

/** From navigation to a full first page of applications (and the overview), each on a fresh page. */
export function dashboardFirstPage(ctx: Context): Promise<Measurement> {
  return withPage(async (page) => {
    await openDashboard(page, ctx); // warm-up: server summaries computed once, browser caches the assets
    const paints: number[] = [];
    const durations = await timeEach(ctx.budget.reads, async () => {
      await page.goto('about:blank');
      await openDashboard(page, ctx);
      paints.push(await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? Number.NaN));
    });
    return {
      value: median(durations),
      details: { rounds: durations.map(round), firstContentfulPaintMs: round(median(paints)), appsShown: await page.locator('#apps tr').count() },
    };
  });
}

/** From typing a search to the narrowed list on screen (the search's debounce included). */
export function dashboardFilter(ctx: Context): Promise<Measurement> {
  return withPage(async (page) => {
    await openDashboard(page, ctx);
    const search = page.getByLabel('Search applications');
    let round_ = 0;
    const durations = await timeEach(ctx.budget.reads, async () => {
      // Alternate between a narrow query (11 apps) and clearing it (500 apps, first page).
      const query = `app-${40 + (round_++ % 10)}`;
      await search.fill(query);
      await page.locator('#apps-status', { hasText: `11 of 500 applications match “${query}”` }).waitFor({ timeout: 30_000 });
      await search.fill('');
      await page.locator('#apps-status', { hasText: /^500 applications/ }).waitFor({ timeout: 30_000 });
    });
    // Each round is two filters (narrow, then back to all).
    return {
      value: median(durations) / 2,
      details: { rounds: durations.map((d) => round(d / 2)), debounceMs: SEARCH_DEBOUNCE_MS, rowsAfterFilter: 11 },
    };
  });
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
