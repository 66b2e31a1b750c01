import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Debian's chromium (apt-get install -y chromium; .ci/apt-packages lists it). Playwright never downloads one. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Headless, and nothing that reaches outside loopback (no QUIC, sync, updates or background fetches). */
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface Chromium {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/**
 * Starts Debian's chromium with a fresh user-data-dir, removed on close. A missing browser is
 * an error naming the package, never a skipped test: CI must not go green without it.
 */
export async function launchChromium(options: { viewport?: { width: number; height: number }; deviceScaleFactor?: number } = {}): Promise<Chromium> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`chromium is missing at ${CHROMIUM_PATH}: the dashboard's browser tests need Debian's chromium (apt-get install -y chromium; CI installs it from .ci/apt-packages)`);
  }
  const userDataDir = mkdtempSync(join(tmpdir(), 'roster-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: options.viewport ?? { width: 1280, height: 900 },
      deviceScaleFactor: options.deviceScaleFactor ?? 1,
      timeout: 30_000,
    });
    return {
      context,
      async close() {
        await context.close();
        rmSync(userDataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw err;
  }
}
