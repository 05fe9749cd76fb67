/**
 * Headless Chromium for tests that look at rendered pages (HTML reports, the dashboard).
 * It drives the system's Debian Chromium through playwright-core, which ships no
 * browser: tests never download one.
 */
import { chromium, type Browser, type BrowserContext, type Request } from 'playwright-core';

/** The browser binary; CI images put Debian's build here. */
export const CHROMIUM_PATH = process.env.HOOKSHADOW_CHROMIUM ?? '/usr/bin/chromium';

/** Flags that keep the browser quiet and offline: no sandbox (containers), no GPU, no background fetches. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Launches headless Chromium; the caller closes it (one launch per test file, in beforeAll/afterAll). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
}

/**
 * Aborts every request a context's pages make and records its URL, so a test can
 * assert that a page it loaded with `setContent` fetched nothing.
 */
export async function blockNetwork(context: BrowserContext): Promise<string[]> {
  const requested: string[] = [];
  context.on('request', (req: Request) => requested.push(req.url()));
  await context.route('**/*', async (route) => {
    await route.abort('blockedbyclient');
  });
  return requested;
}
