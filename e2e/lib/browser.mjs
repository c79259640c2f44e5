// Debian's Chromium through playwright-core (never a downloaded browser).
import { chromium } from "playwright-core";

export function launch() {
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
