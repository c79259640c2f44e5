// What every end-to-end file needs: the real reference server and the browser of E2E_ENGINE
// (lib/browser.mjs), started before its tests and stopped after them, and tests that each get
// their own browser context.
import { test, before, after } from "node:test";
import { startServer } from "./server.mjs";
import { launch } from "./browser.mjs";

/**
 * Registers this file's before/after hooks. Returns `{ server, browser, scenario }`; `server`
 * and `browser` are set once the before hook has run (read them inside tests).
 */
export function harness() {
  const h = {
    server: null,
    browser: null,
    /**
     * A test with its own browser context, closed afterwards whatever happens. `skip`: the
     * written reason it cannot run in this engine (see `unsupported` in lib/browser.mjs).
     */
    scenario(name, fn, timeout = 90_000, { skip = false } = {}) {
      test(name, { timeout, skip }, async () => {
        const context = await h.browser.newContext();
        try {
          await fn(context);
        } finally {
          await context.close();
        }
      });
    },
  };
  before(async () => {
    h.server = await startServer();
    h.browser = await launch();
  });
  after(async () => {
    await h.browser?.close();
    await h.server?.stop();
  });
  return h;
}
