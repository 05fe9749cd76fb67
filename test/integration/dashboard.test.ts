import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDeliveries } from '../../fixtures/generator/deliveries.js';
import { sendDeliveries } from '../../fixtures/generator/send.js';
import { resolveServeConfig } from '../../serve/config.js';
import { startServe, type RunningServe } from '../../serve/server.js';
import { launchChromium } from '../support/chromium.js';

/**
 * The dashboard in headless Chromium (Debian's, driven by playwright-core): it loads
 * with nothing from outside the server, shows a delivery arriving in the live feed,
 * flips a flow's mode, and shows the cutover gate's reasons when it refuses.
 * Screenshots go to test/artifacts/.
 */

const TOKEN = 'dashboard-test-token-0123456789';
const ARTIFACTS = join(import.meta.dirname, '..', 'artifacts');

let tmp: string;
let serve: RunningServe;
let browser: Browser;
let page: Page;
const requested: string[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hookshadow-dashboard-'));
  await mkdir(ARTIFACTS, { recursive: true });
  const config = await resolveServeConfig({ inline: { store: join(tmp, 'store'), port: 0, log_level: 'silent', serve: { admin_token: TOKEN, settle_ms: 50 } }, env: {} });
  serve = await startServe(config);
  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.on('request', (r) => requested.push(r.url()));
  page = await context.newPage();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await serve?.stop();
  await rm(tmp, { recursive: true, force: true });
});

async function screenshot(name: string): Promise<void> {
  const file = join(ARTIFACTS, `dashboard-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  const png = PNG.sync.read(await readFile(file));
  expect(png.width).toBe(1280);
  expect(png.height).toBeGreaterThan(400);
}

describe('the serve dashboard in Chromium', () => {
  it('loads from the server alone, with the flows and their modes', async () => {
    await page.goto(`${serve.url}/#token=${TOKEN}`);
    await page.getByTestId('global-mode').filter({ hasText: 'dry-run' }).waitFor();
    await page.getByTestId('flow-assign-agent').waitFor();
    expect(await page.getByTestId('mode-assign-agent').inputValue()).toBe('dry-run');
    // The token left the address bar once read.
    expect(page.url()).toBe(`${serve.url}/`);
    expect(requested.length).toBeGreaterThan(0);
    expect(requested.filter((u) => !u.startsWith(serve.url) && !u.startsWith('data:'))).toEqual([]);
    expect(await page.locator("main").textContent()).not.toContain("Loading…");
    await screenshot("loaded");
  });

  it('shows a delivery arriving in the live feed, then its divergence', async () => {
    const [d] = [...generateDeliveries({ count: 200, seed: 12, slim: true })].filter((x) => x.event === 'issue_comment' && /^\/retry\b/m.test(JSON.parse(x.body).comment.body) && JSON.parse(x.body).comment.user.login !== 'hookbot');
    expect((await sendDeliveries(serve.url, [d!], { concurrency: 1 }))[0]!.status).toBe(200);
    await page.getByTestId('feed').locator('li[data-type="delivery"]', { hasText: d!.deliveryId }).waitFor();
    await page.getByTestId('feed').locator('li[data-type="divergence"]', { hasText: d!.deliveryId }).waitFor();
    await page.getByTestId('divergences').getByText(d!.deliveryId).click();
    const diff = page.getByTestId('diff');
    await diff.getByText('Flows intended').waitFor();
    expect(await diff.textContent()).toContain('extra_in_flow');
    expect(Number(await page.getByTestId('card-deliveries').textContent())).toBeGreaterThanOrEqual(1);
    await screenshot('delivery');
  });

  it('flips a flow off, and shows the gate\'s reasons when a cutover is refused', async () => {
    await page.getByTestId('mode-request-review').selectOption('off');
    await page.getByTestId('feed').locator('li[data-type="mode-change"]', { hasText: 'request-review dry-run → off by dashboard' }).waitFor();
    expect(serve.context.modes.effective()['request-review']).toBe('off');

    await page.getByTestId('mode-assign-agent').selectOption('live');
    const refusal = page.getByTestId('refusal');
    await refusal.waitFor();
    expect(await refusal.textContent()).toContain('HS_ERR_CUTOVER_BLOCKED');
    const reasons = await page.getByTestId('refusal-reason').allTextContents();
    expect(reasons).toEqual(expect.arrayContaining([expect.stringMatching(/^assign-agent: soaked .* of 7 days in dry-run$/), expect.stringMatching(/^assign-agent: \d+ of 500 deliveries run in dry-run$/)]));
    // Refused means refused: nothing changed, and the select shows the mode that is in force.
    expect(serve.context.modes.effective()['assign-agent']).toBe('dry-run');
    await expect.poll(() => page.getByTestId('mode-assign-agent').inputValue()).toBe('dry-run');
    await screenshot('refused');
  });
});
