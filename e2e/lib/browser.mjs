// The browser the suite runs in, chosen by E2E_ENGINE (default chromium), behind the subset of
// playwright's Browser / BrowserContext / Page API the tests use: newContext (a separate
// profile: its own storage), newPage, goto, evaluate, waitForFunction, reload, screenshot, on,
// route / unroute, close.
// - chromium: Debian's Chromium through playwright-core (never a downloaded browser); the
//   objects are playwright's own.
// - firefox: Debian's firefox-esr through puppeteer-core over WebDriver BiDi (engines/firefox.mjs).
// - webkit: Debian's WebKitWebDriver + MiniBrowser over classic WebDriver, under xvfb-run
//   (engines/webkit.mjs).
// Routes in firefox and webkit run in a per-context loopback forward proxy (engines/proxy.mjs).
import { chromium } from "playwright-core";

export const ENGINE = process.env.E2E_ENGINE || "chromium";
if (!["chromium", "firefox", "webkit"].includes(ENGINE)) throw new Error(`E2E_ENGINE=${ENGINE}: chromium, firefox or webkit`);

/**
 * The reason a test cannot run in this engine, or false: `reasons` maps engine to reason, e.g.
 * `{ firefox: "...", webkit: "..." }`. For node:test's `skip` option.
 */
export function unsupported(reasons) {
  return reasons[ENGINE] ?? false;
}

export async function launch() {
  if (ENGINE === "firefox") return (await import("./engines/firefox.mjs")).launch();
  if (ENGINE === "webkit") return (await import("./engines/webkit.mjs")).launch();
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"],
  });
}

/** Opens one device page and waits until its ClientData is open. */
export async function openDevice(context, base, device, tab = 1) {
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[${device}${tab}] page error:`, e.message));
  await page.goto(`${base}/device.html?device=${device}&tab=${tab}`);
  await page.waitForFunction(() => window.clientdata !== undefined, null, { timeout: 20_000 });
  return page;
}
