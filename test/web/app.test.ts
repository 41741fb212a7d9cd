// The web app in a real browser (Debian's Chromium through playwright-core) against the embedded
// product (real gateway, real runner on the tiny model): make, watch, keep, cancel, rerun, the
// key prompt, a refusal shown at its field, a dropped event stream resumed with Last-Event-ID,
// keyboard use, the Content-Security-Policy and the first load's budget (printed). Screenshots at
// 375 and 1,280 px go to test-output/web/.
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createItemgenClient, type Generation } from '../../src/client/index.ts';
import { startEmbeddedProduct, type TestProduct } from '../helpers/product.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';
import { firstLoad, launchBrowser, openPage, screenshot, WIDTHS } from './browser.ts';

/**
 * The tiny model is fast (150 steps of one 1024² image take about 1.5 s here): a generation to
 * watch runs two such images, a long one to cancel four, which the product's cost limit is raised for.
 */
const WATCHABLE = { Width: '1024', Height: '1024', Steps: '150', Images: '2' };
const LONG = { ...WATCHABLE, Images: '4' };
const COSTLY = { MAX_GENERATION_COST: '20000' };
// One job on the model at a time and none claimed ahead (RUNNER_PREFETCH 1): a second generation
// then waits in the queue, so the page's queue position can be seen. With the default of 2 the
// runner claims it behind the running one (decision 19) and it shows as processing at step 0.
const ONE_AT_A_TIME = { RUNNER_PREFETCH: '1' };
const BUDGET_BYTES = 150 * 1024;

async function generate(page: Page, prompt: string, fields: Record<string, string> = {}) {
  await page.getByLabel('Prompt', { exact: true }).fill(prompt);
  for (const [label, value] of Object.entries(fields)) await page.getByLabel(label, { exact: true }).fill(value);
  await page.getByRole('button', { name: 'Generate' }).click();
}

/** The newest generation of the page's key with this prompt, once the page shows it running or listed. */
async function idOf(page: Page, prompt: string): Promise<string> {
  const el = page.locator(`[data-id]`, { hasText: prompt }).first();
  await el.waitFor();
  return (await el.getAttribute('data-id'))!;
}

const tileOf = (page: Page, id: string) => page.locator(`.tile[data-id="${id}"]`);

function run(command: string, cwd: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', command], { cwd, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const open = suite<{ browser: Browser; p: TestProduct }>('the web app, open mode');
open.before(async (ctx) => {
  [ctx.browser, ctx.p] = await Promise.all([launchBrowser(), startEmbeddedProduct(COSTLY, ONE_AT_A_TIME)]);
});
open.after(async ({ browser, p }) => {
  await browser?.close();
  await p?.stop();
});

open('make → watch (progress, preview) → keep (thumbnail) → details, at 1,280 and 375 px', async ({ browser, p }) => {
  const client = createItemgenClient({ baseUrl: p.url });
  for (const [name, size] of Object.entries(WIDTHS)) {
    const { page, context, errors } = await openPage(browser, size);
    await page.goto(`${p.url}/`);
    await page.waitForSelector('html[data-ready]');
    const prompt = `a glowing sword seen at ${size.width} px, tsuki_advtr`;
    await generate(page, prompt, WATCHABLE);
    const id = await idOf(page, prompt);
    const card = page.locator(`.card[data-id="${id}"]`);
    // Steps and the live preview arrive while it runs.
    await page.waitForFunction((gid) => (document.querySelector<HTMLProgressElement>(`.card[data-id="${gid}"] progress`)?.value ?? 0) > 0, id);
    await card.locator('.preview img').waitFor();
    assert.match((await card.locator('.preview img').getAttribute('src')) ?? '', /^data:image\/png;base64,/);
    assert.match((await card.locator('.steps').textContent()) ?? '', new RegExp(`Step \\d+ / ${WATCHABLE.Steps}`));
    await screenshot(page, `running-${size.width}`);
    // Done: it leaves Running, and the gallery shows its thumbnail (a WebP, not the PNG).
    const thumb = tileOf(page, id).locator('img.thumb');
    await thumb.waitFor();
    await card.waitFor({ state: 'detached' });
    const g = await client.get(id);
    assert.is(g.status, 'completed');
    await screenshot(page, `gallery-${size.width}`);

    await tileOf(page, id).locator('button').click();
    const dialog = page.getByRole('dialog');
    await dialog.locator('figure img').waitFor();
    assert.is(await dialog.locator('.seeds li').first().getAttribute('data-seed'), String(g.images![0]!.seed));
    const infotext = (await dialog.locator('.infotext').textContent()) ?? '';
    assert.match(infotext, new RegExp(`Seed: ${g.params.seed}, Size: 1024x1024`), 'the infotext the PNG carries');
    assert.match((await dialog.locator('.timings').textContent()) ?? '', /denoising/);
    assert.match(page.url(), new RegExp(`#/generations/${id}$`), 'the detail has its own URL');
    await screenshot(page, `detail-${size.width}`, false);
    // Download is the PNG itself.
    const [download] = await Promise.all([page.waitForEvent('download'), dialog.getByRole('link', { name: 'Download' }).click()]);
    const bytes = await fs.readFile((await download.path())!);
    assert.equal([...bytes.subarray(1, 4)], [0x50, 0x4e, 0x47]);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    if (name === 'phone') {
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.is(overflow, 0, 'nothing wider than a 375 px screen');
    }
    assert.equal(errors, []);
    await context.close();
  }
});

open('served at / with a strict CSP and cached assets; a first visit with history is within budget (printed)', async ({ browser, p }) => {
  const page = await fetch(`${p.url}/`);
  assert.is(page.status, 200);
  const csp = page.headers.get('content-security-policy') ?? '';
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.not.match(csp, /unsafe-inline|unsafe-eval/);
  const html = await page.text();
  assert.not.match(html, /<script>|<script [^>]*>[^<]/, 'no inline script');
  assert.not.match(html, /style=/, 'no inline style');
  const script = /src="(\/assets\/main-[A-Z0-9]+\.js)"/.exec(html)?.[1];
  assert.ok(script, 'the page links its script');
  const asset = await fetch(`${p.url}${script}`, { headers: { 'Accept-Encoding': 'br' } });
  assert.is(asset.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  assert.is(asset.headers.get('content-encoding'), 'br');
  assert.is((await fetch(`${p.url}/assets/nothing.js`)).status, 404);

  const { page: tab, context, errors } = await openPage(browser, WIDTHS.desktop);
  const thirdParty: string[] = [];
  tab.on('request', (r) => {
    if (!r.url().startsWith(p.url) && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) thirdParty.push(r.url());
  });
  // A first visit to a key with history: the page, its assets, the first page of the gallery and its thumbnails.
  await tab.goto(`${p.url}/`);
  await tab.waitForSelector('html[data-ready]');
  await tab.waitForFunction(() => document.querySelectorAll('.tile img.thumb').length >= 2 && document.querySelectorAll('.tile .img-loading').length === 0);
  const load = await firstLoad(tab);
  console.log(`  web app first load: ${(load.bytes / 1024).toFixed(1)} KB over ${load.resources + 1} requests (budget ${BUDGET_BYTES / 1024} KB), interactive at ${Math.round(load.interactiveMs)} ms (target 1000 ms)`);
  assert.ok(load.bytes > 0 && load.bytes <= BUDGET_BYTES, `transferred ${load.bytes} bytes`);
  assert.ok(load.interactiveMs > 0, 'the page marked when it became usable');
  assert.equal(thirdParty, []);
  assert.equal(errors, []);
  await context.close();
});

open('two at once on one event stream: the second shows its place in the queue; cancel the long one and it stops', async ({ browser, p }) => {
  const { page, context } = await openPage(browser, WIDTHS.desktop);
  let streams = 0;
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/v1/events') streams++;
  });
  await page.goto(`${p.url}/`);
  await page.waitForSelector('html[data-ready]');
  await generate(page, 'a very long shield', LONG);
  const long = await idOf(page, 'a very long shield');
  await generate(page, 'a shield waiting its turn', { Width: '512', Height: '512', Steps: '3' });
  const next = await idOf(page, 'a shield waiting its turn');
  const longCard = page.locator(`.card[data-id="${long}"]`);
  // One runner: the second waits behind the first, and says so.
  assert.match((await page.locator(`.card[data-id="${next}"] .queue`).textContent()) ?? '', /^Queued: (next|\d+ ahead)$/);
  await longCard.getByRole('button', { name: 'Cancel' }).click();
  await longCard.waitFor({ state: 'detached' });
  await tileOf(page, long).and(page.locator('[data-status="canceled"]')).waitFor();
  await tileOf(page, next).locator('img.thumb').waitFor();
  const client = createItemgenClient({ baseUrl: p.url });
  assert.is((await client.get(long)).status, 'canceled');
  assert.is((await client.get(next)).status, 'completed');
  assert.is(streams, 1, 'one event stream for all of them');
  // The status filter lists only those.
  await page.getByLabel('Show').selectOption('canceled');
  await tileOf(page, long).waitFor();
  assert.equal([...new Set(await page.locator('.tile').evaluateAll((els) => els.map((e) => e.getAttribute('data-status'))))], ['canceled']);
  await context.close();
});

open('the gallery loads the next page as its end scrolls into view', async ({ browser, p }) => {
  const client = createItemgenClient({ baseUrl: p.url });
  for (let i = 0; i < 30; i++) await client.submit({ prompt: `a pebble number ${i}`, num_inference_steps: 1, width: 256, height: 256 }, { wait: true });
  const total = (await client.list({ limit: 100 })).data.length;
  // A phone's screen: two columns, so the first page (24) ends far below it.
  const { page, context } = await openPage(browser, WIDTHS.phone);
  const cursors: (string | null)[] = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname === '/v1/generations' && r.method() === 'GET') cursors.push(u.searchParams.get('cursor'));
  });
  await page.goto(`${p.url}/`);
  await page.waitForSelector('html[data-ready]');
  await page.locator('.tile').nth(23).waitFor();
  assert.is(await page.locator('.tile').count(), 24, 'one page at first');
  await page.locator('.gallery-end').scrollIntoViewIfNeeded();
  await page.locator('.tile').nth(total - 1).waitFor();
  assert.is(await page.locator('.tile').count(), total, 'then the rest');
  assert.is(cursors[0], null);
  assert.match(cursors[1] ?? '', /^\d+$/, 'the second page asked with next_cursor');
  await context.close();
});

open('rerun gets the same seed, vary seed another; the copied curl and CLI commands run as shown', async ({ browser, p }) => {
  const client = createItemgenClient({ baseUrl: p.url });
  const { page, context } = await openPage(browser, WIDTHS.desktop, p.url);
  await page.goto(`${p.url}/`);
  await page.waitForSelector('html[data-ready]');
  await generate(page, 'a ruby ring', { Steps: '4', Seed: '4242', Images: '2' });
  const id = await idOf(page, 'a ruby ring');
  await tileOf(page, id).locator('img.thumb').waitFor();
  await tileOf(page, id).locator('button').click();
  const dialog = page.getByRole('dialog');
  // evaluateAll does not wait: the detail renders after the hash changes.
  await dialog.locator('.seeds li').nth(1).waitFor();
  assert.equal(await dialog.locator('.seeds li').evaluateAll((els) => els.map((e) => e.getAttribute('data-seed'))), ['4242', '4243']);

  await dialog.getByRole('button', { name: 'Copy as curl' }).click();
  const curl = (await dialog.locator('.command').textContent())!;
  assert.is(await page.evaluate(() => navigator.clipboard.readText()), curl, 'on the clipboard as shown');
  await dialog.getByRole('button', { name: 'Copy as CLI' }).click();
  // The same element shows it, in place of the curl command.
  await page.waitForFunction(() => document.querySelector('.command')?.textContent?.startsWith('itemgen '));
  const cli = (await dialog.locator('.command').textContent())!;

  const before = new Set((await client.list({ limit: 100 })).data.map((g) => g.id));
  await dialog.getByRole('button', { name: 'Rerun' }).click();
  await dialog.waitFor({ state: 'hidden' });
  const rerun = (await client.list({ limit: 100 })).data.find((g) => !before.has(g.id))!;
  assert.ok(rerun, 'the rerun is a new generation');
  assert.is(rerun.params.seed, 4242);
  assert.equal({ ...rerun.params }, { ...(await client.get(id)).params });
  await tileOf(page, rerun.id).locator('img.thumb').waitFor();

  await tileOf(page, id).locator('button').click();
  await dialog.getByRole('button', { name: 'Vary seed' }).click();
  await dialog.waitFor({ state: 'hidden' });
  const known = new Set([...before, rerun.id]);
  const varied = (await client.list({ limit: 100 })).data.find((g) => !known.has(g.id))!;
  assert.is.not(varied.params.seed, 4242);
  assert.is(varied.params.prompt, 'a ruby ring');

  // What was copied runs: curl submits the same parameters, the CLI writes the same two images.
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-web-'));
  try {
    const posted = await run(curl, dir, {});
    assert.is(posted.code, 0, posted.stderr);
    const fromCurl = JSON.parse(posted.stdout) as Generation;
    assert.equal(fromCurl.params, rerun.params);
    const bin = path.resolve('bin/itemgen.js');
    const made = await run(`itemgen() { node ${JSON.stringify(bin)} "$@"; }; ${cli}`, dir, {});
    assert.is(made.code, 0, made.stderr);
    const pngs = (await fs.readdir(dir)).filter((f) => f.endsWith('.png')).sort();
    assert.is(pngs.length, 2);
    const original = Buffer.from(await client.download(id, 0));
    const byCli = await fs.readFile(path.join(dir, pngs.find((f) => f.endsWith('-0.png'))!));
    assert.ok(original.equals(byCli), 'the CLI reproduced image 0 byte for byte');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
  await context.close();
});

open('a refusal of the API is shown at the field it names', async ({ browser, p }) => {
  const { page, context } = await openPage(browser, WIDTHS.desktop);
  // A page whose limits are out of date (wider than the API's): the form lets 2048 through, the API does not.
  await page.route('**/v1/models', async (route) => {
    const res = await route.fetch();
    const body = (await res.json()) as { data: { limits: { width: { max: number } } }[] };
    for (const m of body.data) m.limits.width.max = 4096;
    await route.fulfill({ response: res, json: body });
  });
  await page.goto(`${p.url}/`);
  await page.waitForSelector('html[data-ready]');
  const before = (await createItemgenClient({ baseUrl: p.url }).list({ limit: 100 })).data.length;
  await generate(page, 'a wide banner', { Width: '2048' });
  const error = page.locator('#width-error');
  await error.waitFor();
  const direct = await fetch(`${p.url}/v1/generations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'a wide banner', width: 2048 }) });
  const problem = (await direct.json()) as { errors: { path: string; message: string }[] };
  assert.is(direct.status, 422);
  assert.is(await error.textContent(), problem.errors.find((e) => e.path === 'width')!.message);
  assert.is(await page.getByLabel('Width', { exact: true }).getAttribute('aria-invalid'), 'true');
  assert.is((await createItemgenClient({ baseUrl: p.url }).list({ limit: 100 })).data.length, before, 'nothing was stored');
  // The form's own check needs no round trip: an empty prompt never leaves the page.
  await page.getByLabel('Prompt', { exact: true }).fill('   ');
  await page.getByRole('button', { name: 'Generate' }).click();
  assert.is(await page.locator('#prompt-error').textContent(), 'Describe the item.');
  await context.close();
});

open('keyboard only: every control is labelled; Tab reaches the form and a tile, Enter opens it, Escape closes it', async ({ browser, p }) => {
  const { page, context } = await openPage(browser, WIDTHS.desktop);
  await page.goto(`${p.url}/`);
  await page.waitForSelector('html[data-ready]');
  await page.locator('.tile img.thumb').first().waitFor();
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>('input, select, textarea, button, a')]
      .filter((el) => !((el as HTMLInputElement).labels?.length || el.getAttribute('aria-label') || el.textContent?.trim()))
      .map((el) => el.outerHTML.slice(0, 80)),
  );
  assert.equal(unlabelled, []);
  const focusedId = () => page.evaluate(() => document.activeElement?.id ?? '');
  for (let i = 0; i < 10 && (await focusedId()) !== 'prompt'; i++) await page.keyboard.press('Tab');
  assert.is(await focusedId(), 'prompt');
  await page.keyboard.type('a keyboard-made key');
  let onTile = false;
  for (let i = 0; i < 40 && !onTile; i++) {
    await page.keyboard.press('Tab');
    onTile = await page.evaluate(() => document.activeElement?.closest('.tile') !== null);
  }
  assert.ok(onTile, 'Tab reaches the gallery');
  await page.keyboard.press('Enter');
  await page.getByRole('dialog').waitFor();
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'hidden' });
  // The dialog's close event, which clears the hash, comes just after it is hidden.
  await page.waitForFunction(() => location.hash === '');
  await context.close();
});

open('light and dark follow the system', async ({ browser, p }) => {
  const { page, context } = await openPage(browser, WIDTHS.desktop);
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const lightness = (rgb: string) => rgb.match(/\d+/g)!.slice(0, 3).map(Number).reduce((a, b) => a + b, 0) / 3;
  await page.emulateMedia({ colorScheme: 'light' });
  await page.goto(`${p.url}/`);
  await page.waitForSelector('html[data-ready]');
  assert.ok(lightness(await background()) > 200, 'light');
  await page.emulateMedia({ colorScheme: 'dark' });
  assert.ok(lightness(await background()) < 60, 'dark');
  await page.locator('.tile img.thumb').first().waitFor();
  await screenshot(page, 'dark-1280');
  await context.close();
});

open('a dropped event stream is resumed with Last-Event-ID, and the page follows to the end', async ({ browser, p }) => {
  const port = Number(new URL(p.url).port);
  const proxy = await startTcpProxy('127.0.0.1', port);
  const origin = `http://127.0.0.1:${proxy.port}`;
  try {
    const { page, context } = await openPage(browser, WIDTHS.desktop);
    const streams: (string | undefined)[] = [];
    page.on('request', (r) => {
      if (new URL(r.url()).pathname === '/v1/events') streams.push(r.headers()['last-event-id']);
    });
    await page.goto(`${origin}/`);
    await page.waitForSelector('html[data-ready]');
    await page.locator('.live-live').waitFor();
    await generate(page, 'a lantern through a cut', WATCHABLE);
    const id = await idOf(page, 'a lantern through a cut');
    await page.waitForFunction((gid) => (document.querySelector<HTMLProgressElement>(`.card[data-id="${gid}"] progress`)?.value ?? 0) > 0, id);
    proxy.cut();
    await page.locator('.live-reconnecting').waitFor();
    await proxy.restore();
    await page.locator('.live-live').waitFor();
    await tileOf(page, id).locator('img.thumb').waitFor();
    assert.is(streams[0], undefined, 'the first stream starts from now');
    assert.ok(streams.slice(1).some((h) => h !== undefined && /^\d+$/.test(h)), `a later one resumed: ${JSON.stringify(streams)}`);
    await context.close();
  } finally {
    await proxy.close();
  }
});

open.run();

const keyed = suite<{ browser: Browser; p: TestProduct; key: string }>('the web app, with API keys');
keyed.before(async (ctx) => {
  [ctx.browser, ctx.p] = await Promise.all([launchBrowser(), startEmbeddedProduct()]);
  const res = await fetch(`${ctx.p.url}/admin/v1/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ctx.p.product.gateway.settings.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'designer' }),
  });
  ctx.key = ((await res.json()) as { key: string }).key;
});
keyed.after(async ({ browser, p }) => {
  await browser?.close();
  await p?.stop();
});

keyed('asks for the key once, refuses a wrong one, keeps the right one across reloads, forgets it on sign out', async ({ browser, p, key }) => {
  const { page, context, errors } = await openPage(browser, WIDTHS.phone);
  const sentTo = new Set<string>();
  page.on('request', (r) => {
    if (r.headers().authorization) sentTo.add(new URL(r.url()).origin);
  });
  await page.goto(`${p.url}/`);
  const field = page.getByLabel('API key');
  await field.waitFor();
  await screenshot(page, 'sign-in-375');
  await field.fill('igk_wrong');
  await page.getByRole('button', { name: 'Sign in' }).click();
  assert.is(await page.locator('#api-key-error').textContent(), 'That API key is not accepted.');
  await field.fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForSelector('html[data-ready]');
  await page.reload();
  await page.waitForSelector('html[data-ready]');
  assert.is(await page.getByLabel('API key').count(), 0, 'not asked again');
  await generate(page, 'a keyed amulet', { Steps: '3' });
  const id = await idOf(page, 'a keyed amulet');
  await tileOf(page, id).locator('img.thumb').waitFor();
  assert.is((await createItemgenClient({ baseUrl: p.url, apiKey: key }).get(id)).params.prompt, 'a keyed amulet');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await field.waitFor();
  assert.is(await page.evaluate(() => localStorage.length), 0, 'forgotten');
  assert.equal([...sentTo], [p.url], 'the key went to this origin only');
  assert.equal(errors.filter((e) => !/401/.test(e)), []);
  await context.close();
});

keyed.run();
