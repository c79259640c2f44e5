// Stock Debian Firefox ESR through puppeteer-core over WebDriver BiDi (playwright's Firefox needs
// its own patched build, which cannot be installed here). Wrapped to the playwright calls the
// tests use; routes run in the context's proxy (proxy.mjs).
import puppeteer from "puppeteer-core";
import { execFileSync } from "node:child_process";
import { ContextRoutes } from "./proxy.mjs";
import { waitForFunction } from "./wait.mjs";

const executable = () => process.env.FIREFOX || execFileSync("sh", ["-c", "command -v firefox-esr || command -v firefox"]).toString().trim();

export async function launch() {
  // No storage pref is set: open() must not wait on Firefox's persist() prompt by itself. The
  // one pref lets a context's proxy (routes) see loopback requests, which Firefox never proxies
  // by default.
  const browser = await puppeteer.launch({ browser: "firefox", executablePath: executable(), headless: true, extraPrefsFirefox: { "network.proxy.allow_hijacking_localhost": true } });
  const contexts = new Set();
  return {
    async newContext() {
      const routes = new ContextRoutes();
      const proxyServer = await routes.listen();
      const context = new FirefoxContext(await browser.createBrowserContext({ proxyServer, proxyBypassList: [] }), routes);
      contexts.add(context);
      context.onClose = () => contexts.delete(context);
      return context;
    },
    // As playwright's: closing the browser closes its contexts (and so their proxies).
    async close() {
      await Promise.all([...contexts].map((c) => c.close()));
      await browser.close();
    },
  };
}

class FirefoxContext {
  constructor(context, routes) {
    this.context = context;
    this.routes = routes;
    this.pages = new Set();
    this.offline = false;
  }

  async newPage() {
    const page = new FirefoxPage(this, await this.context.newPage());
    if (this.offline) await page.page.setOfflineMode(true);
    this.pages.add(page);
    return page;
  }

  route(glob, handler) {
    this.routes.route(glob, handler);
  }

  unroute(glob, handler) {
    this.routes.unroute(glob, handler);
  }

  /** Context events: "request" (every request of the context's pages, seen by its proxy). */
  on(event, listener) {
    if (event !== "request") throw new Error(`context.on("${event}") is not supported in this engine adapter`);
    this.routes.onRequest(listener);
  }

  async setOffline(offline) {
    this.offline = offline;
    for (const page of this.pages) if (!page.page.isClosed()) await page.page.setOfflineMode(offline);
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    await this.context.close().catch(() => {});
    await this.routes.close();
    this.onClose?.();
  }
}

class FirefoxPage {
  constructor(context, page) {
    this.owner = context;
    this.page = page;
  }

  context() {
    return this.owner;
  }

  /** pageerror and console (type "warn" renamed "warning", as playwright names it). */
  on(event, listener) {
    if (event === "console") {
      this.page.on("console", (m) => listener({ type: () => (m.type() === "warn" ? "warning" : m.type()), text: () => m.text() }));
    } else this.page.on(event, listener);
  }

  goto(url) {
    return this.page.goto(url);
  }

  reload() {
    return this.page.reload();
  }

  evaluate(fn, arg) {
    return this.page.evaluate(fn, arg);
  }

  waitForFunction(fn, arg, options) {
    return waitForFunction(this, fn, arg, options);
  }

  screenshot(options) {
    return this.page.screenshot(options);
  }

  async close() {
    this.owner.pages.delete(this);
    if (!this.page.isClosed()) await this.page.close();
  }
}
