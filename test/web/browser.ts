// A real browser for the web app's tests: Debian's Chromium (scripts/services.sh installs it where
// missing) driven by playwright-core, whose own browser download needs the internet. Screenshots
// go to test-output/web/ (ignored by git), to be looked at.
import fs from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const SCREENSHOTS = path.resolve('test-output/web');

export function launchBrowser(): Promise<Browser> {
  // Root has no user namespace sandbox in CI containers.
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

export const WIDTHS = { phone: { width: 375, height: 812 }, desktop: { width: 1280, height: 900 } } as const;

/** A fresh context (no cache, no storage) whose page errors fail the test that reads `errors`. */
export async function openPage(browser: Browser, size: (typeof WIDTHS)[keyof typeof WIDTHS], origin?: string): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: size, ...(origin ? { permissions: ['clipboard-read', 'clipboard-write'] } : {}) });
  if (origin) await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  return { context, page, errors };
}

/** The whole page, or (`fullPage` false) what the screen shows, as a modal dialog is seen. */
export async function screenshot(page: Page, name: string, fullPage = true): Promise<string> {
  await fs.mkdir(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  return file;
}

/** What the page's first load cost: bytes over the wire (document and every finished resource) and when it was usable. */
export function firstLoad(page: Page): Promise<{ bytes: number; interactiveMs: number; resources: number }> {
  return page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
    const resources = performance.getEntriesByType('resource') as PerformanceResourceTiming[];
    const mark = performance.getEntriesByName('itemgen-interactive')[0];
    return {
      bytes: nav.transferSize + resources.reduce((sum, r) => sum + r.transferSize, 0),
      interactiveMs: mark ? mark.startTime : -1,
      resources: resources.length,
    };
  });
}
