// playwright's page.waitForFunction(fn, arg, { timeout }) over evaluate: polls every 50 ms (an
// evaluate that throws, e.g. while the page is still navigating, counts as not yet).
export async function waitForFunction(page, fn, arg, { timeout = 30_000 } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await page.evaluate(fn, arg);
      if (value) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`waitForFunction: not true within ${timeout} ms: ${fn}${last ? ` (last error: ${last.message})` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
