// WebKitGTK (Debian's webkit2gtk-driver: WebKitWebDriver driving MiniBrowser) over classic
// WebDriver, with a client of our own over fetch: the dozen commands the tests need are a few
// lines each, where webdriverio would add ~100 packages for them. Needs a display: run the
// suite under `xvfb-run -a`. One WebKitWebDriver (and so one browser profile) per context; each
// page is a window of it (windows, not tabs: a background tab's timers are throttled).
//
// Classic WebDriver runs one command at a time and only in the current window, while the tests
// run evaluate() in several pages at once (e.g. tabs contending for a lock). So evaluate starts
// the function in the page and returns; its result is then collected by short polls, each one
// switching to its window first, all through one queue per session.
import { spawn, execFileSync } from "node:child_process";
import { ContextRoutes } from "./proxy.mjs";
import { waitForFunction } from "./wait.mjs";
import { freePort } from "./ports.mjs";

const miniBrowser = () => process.env.MINIBROWSER || execFileSync("sh", ["-c", "dpkg -L libwebkit2gtk-4.1-0 | grep '/MiniBrowser$' | head -1"]).toString().trim();

export async function launch() {
  const contexts = new Set();
  return {
    async newContext() {
      const context = await WebKitContext.start();
      contexts.add(context);
      context.onClose = () => contexts.delete(context);
      return context;
    },
    async close() {
      await Promise.all([...contexts].map((c) => c.close()));
    },
  };
}

// Values cross as JSON, with undefined, NaN, +-Infinity, -0 and Dates tagged (as playwright
// keeps them); the same encoder runs in the page (as source) and here.
function encode(v) {
  if (v === undefined) return { $t: "u" };
  if (typeof v === "number" && (!Number.isFinite(v) || Object.is(v, -0))) return { $t: "n", v: String(v) };
  if (v instanceof Date) return { $t: "d", v: v.toISOString() };
  if (Array.isArray(v)) return v.map(encode);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, encode(x)]));
  return v;
}
function decode(v) {
  if (Array.isArray(v)) return v.map(decode);
  if (v && typeof v === "object") {
    if (v.$t === "u") return undefined;
    if (v.$t === "n") return Number(v.v);
    if (v.$t === "d") return new Date(v.v);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decode(x)]));
  }
  return v;
}

// Starts fn(arg) in the page under job id; the result lands in window.__e2eJobs[id].
const START = `const [src, arg, id, enc, dec] = arguments;
const encode = (0, eval)("(" + enc + ")"), decode = (0, eval)("(" + dec + ")");
const jobs = (window.__e2eJobs ??= {});
const job = (jobs[id] = { done: false });
Promise.resolve()
  .then(() => { const f = (0, eval)("(" + src + ")"); return typeof f === "function" ? f(decode(arg)) : f; })
  .then((v) => { job.value = JSON.stringify(encode(v)); job.ok = true; }, (e) => { job.error = String(e && e.stack ? e.message + "\\n" + e.stack : e); job.ok = false; })
  .finally(() => { job.done = true; });`;

// Waits up to 200 ms for job id; answers { done, ok, value, error } and forgets a finished job.
const COLLECT = `const [id, done] = [arguments[0], arguments[arguments.length - 1]];
const end = Date.now() + 200;
const look = () => {
  const job = window.__e2eJobs && window.__e2eJobs[id];
  if (!job) return done({ done: true, ok: false, error: "the page lost the evaluation (navigated or reloaded)" });
  if (job.done) { delete window.__e2eJobs[id]; return done(job); }
  if (Date.now() > end) return done({ done: false });
  setTimeout(look, 5);
};
look();`;

let jobs = 0;

class WebKitContext {
  // A MiniBrowser that never answers the new-session command (seen once on a loaded CI machine:
  // no answer within 60 s) is killed with its driver and started again, up to three times.
  static async start() {
    for (let attempt = 1; ; attempt++) {
      const context = await WebKitContext.spawn();
      try {
        await context.open();
        return context;
      } catch (e) {
        await context.kill();
        if (attempt === 3 || !e.message.includes("no answer")) throw e;
      }
    }
  }

  // The driver leads its own process group, so one kill ends it with the MiniBrowser and web
  // processes it started: nothing outlives the context to keep the test file's process alive.
  static async spawn() {
    const port = await freePort();
    const driver = spawn("WebKitWebDriver", [`--port=${port}`], { stdio: "ignore", detached: true });
    const context = new WebKitContext(driver, `http://127.0.0.1:${port}`);
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${context.base}/status`)).ok) return context;
      } catch {}
      if (i > 100) {
        await context.kill();
        throw new Error("WebKitWebDriver did not start");
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async open() {
    const proxy = await this.routes.listen();
    const { sessionId } = await this.raw(
      "POST",
      "/session",
      {
        capabilities: { alwaysMatch: { browserName: "MiniBrowser", proxy: { proxyType: "manual", httpProxy: proxy, noProxy: [] }, "webkitgtk:browserOptions": { binary: miniBrowser(), args: ["--automation"] } } },
      },
      30_000,
    );
    this.session = `/session/${sessionId}`;
    await this.command("POST", "/timeouts", { script: 30_000, pageLoad: 60_000 });
    this.firstWindow = await this.command("GET", "/window");
  }

  async kill() {
    try {
      process.kill(-this.driver.pid, "SIGKILL");
    } catch {}
    await this.routes.close();
  }

  constructor(driver, base) {
    this.driver = driver;
    this.base = base;
    this.routes = new ContextRoutes();
    this.queue = Promise.resolve();
    this.current = null;
    this.pages = new Set();
  }

  // A command unanswered for a minute fails naming itself (a hung page or driver would
  // otherwise hang the test file, past its tests' timeouts, at context close).
  async raw(method, path, body, timeoutMs = 60_000) {
    const signal = AbortSignal.timeout(timeoutMs);
    const res = await fetch(`${this.base}${path}`, { method, signal, headers: { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) }).catch((e) => {
      throw new Error(`WebDriver ${method} ${path}: ${signal.aborted ? `no answer within ${timeoutMs / 1000} s` : e.message}`);
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`WebDriver ${method} ${path}: ${json.value?.error}: ${json.value?.message}`);
    return json.value;
  }

  command(method, path, body) {
    return this.raw(method, `${this.session}${path}`, body);
  }

  /** Runs `fn()` alone in the session, with `handle`'s window current. */
  inWindow(handle, fn) {
    const run = this.queue.then(async () => {
      if (this.current !== handle) {
        await this.command("POST", "/window", { handle });
        this.current = handle;
      }
      return fn();
    });
    this.queue = run.catch(() => {});
    return run;
  }

  async newPage() {
    let handle;
    if (this.firstWindow) {
      handle = this.firstWindow;
      this.firstWindow = null;
    } else {
      handle = (await this.inWindow(this.current ?? (await this.command("GET", "/window")), () => this.command("POST", "/window/new", { type: "window" }))).handle;
    }
    const page = new WebKitPage(this, handle);
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

  async close() {
    if (this.closed) return;
    this.closed = true;
    await Promise.race([this.queue, new Promise((r) => setTimeout(r, 5_000))]);
    await this.raw("DELETE", this.session).catch(() => {});
    await this.kill();
    this.onClose?.();
  }
}

class WebKitPage {
  constructor(context, handle) {
    this.owner = context;
    this.handle = handle;
  }

  context() {
    return this.owner;
  }

  /** Classic WebDriver has no page events: pageerror and console are never heard here. */
  on() {}

  async goto(url) {
    await this.owner.inWindow(this.handle, () => this.owner.command("POST", "/url", { url }));
  }

  reload() {
    return this.owner.inWindow(this.handle, () => this.owner.command("POST", "/refresh", {}));
  }

  async evaluate(fn, arg) {
    const id = `j${++jobs}`;
    const src = typeof fn === "function" ? fn.toString() : fn;
    await this.owner.inWindow(this.handle, () => this.owner.command("POST", "/execute/sync", { script: START, args: [src, encode(arg), id, encode.toString(), decode.toString()] }));
    for (;;) {
      const job = await this.owner.inWindow(this.handle, () => this.owner.command("POST", "/execute/async", { script: COLLECT, args: [id] }));
      if (job.done) {
        if (!job.ok) throw new Error(`page.evaluate: ${job.error}`);
        return decode(JSON.parse(job.value));
      }
    }
  }

  waitForFunction(fn, arg, options) {
    return waitForFunction(this, fn, arg, options);
  }

  /** The window's viewport (classic WebDriver has no full-page capture). */
  async screenshot() {
    const base64 = await this.owner.inWindow(this.handle, () => this.owner.command("GET", "/screenshot"));
    return Buffer.from(base64, "base64");
  }

  async close() {
    this.owner.pages.delete(this);
    if (this.owner.pages.size === 0) {
      // Closing a session's last window ends the session: keep it on a blank page instead.
      await this.goto("about:blank");
      this.owner.firstWindow = this.handle;
      return;
    }
    await this.owner.inWindow(this.handle, () => this.owner.command("DELETE", "/window"));
    this.owner.current = null;
  }
}
