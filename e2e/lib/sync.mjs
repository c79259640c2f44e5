// Helpers for the sync end-to-end tests: extra ClientData instances inside a device page, calls
// into them that bring typed errors back to Node, and routes that watch, hold or tamper with
// `POST /sync/exchange` (matched per requesting node, so other instances are left alone).
import { openDevice } from "./browser.mjs";

let counter = 0;
/** A name no earlier run used: prefix, time, a per-process counter. */
export function unique(prefix) {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}`;
}

/** A loopback port nothing listens on right now. */
export { freePort } from "./engines/ports.mjs";

/** A device page (www/device.html) with its own database, the package module loaded. */
export async function devicePage(context, base) {
  const page = await openDevice(context, base, unique("page"));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") console.error(`[page console.${m.type()}] ${m.text()}`);
  });
  await page.evaluate(async () => {
    await import("/pkg/index.js");
    window.__sync ??= { cds: {}, tokenCalls: {}, events: {}, pending: {}, controllers: {} };
  });
  return page;
}

/** An error thrown inside the page, rebuilt in Node with its name, code and status. */
export class PageError extends Error {
  constructor(e) {
    super(e.message);
    this.name = e.name;
    this.code = e.code;
    this.status = e.status;
    this.isError = e.isError;
  }
}

/**
 * Opens ClientData instance `id` in `page`. spec: { name, user, server (default the page's
 * origin; null: no server option), tokens (what the provider returns on call 1, 2, ...; the last
 * one repeats; default [`dev-token-${user}`]), syncToken (provider returns a string, not a
 * promise), autoSync (default false), sync, dataset (sync.dataset; default "devices", null for the
 * database's name), maxDriftMs, engine }. Every instance records its sync events
 * (local-data-synced, remote-update-available, sync-failed). Returns
 * its metadata().
 */
export async function openInstance(page, id, spec) {
  const out = await page.evaluate(
    async ({ id, spec }) => {
      const { ClientData } = await import("/pkg/index.js");
      const state = window.__sync;
      const options = { name: spec.name };
      if (spec.server !== null) {
        options.server = spec.server ?? location.origin;
        const tokens = spec.tokens ?? [`dev-token-${spec.user}`];
        state.tokenCalls[id] = 0;
        const next = () => tokens[Math.min(state.tokenCalls[id]++, tokens.length - 1)];
        options.token = spec.syncToken ? next : async () => next();
      }
      options.autoSync = spec.autoSync ?? false;
      // Simulated devices of one user are databases of different names in one browser; they
      // share the server dataset "devices" as real devices share a database name. dataset: null
      // keeps the default (the database's own name).
      if (spec.server !== null && spec.dataset !== null) {
        options.sync = { dataset: spec.dataset ?? "devices", ...(spec.sync ?? {}) };
      } else if (spec.sync) options.sync = spec.sync;
      if (spec.maxDriftMs !== undefined) options.maxDriftMs = spec.maxDriftMs;
      if (spec.engine !== undefined) options.engine = spec.engine;
      try {
        const cd = await ClientData.open(options);
        state.cds[id] = cd;
        state.events[id] = [];
        for (const type of ["local-data-synced", "remote-update-available"]) {
          cd.on(type, (event) => state.events[id].push({ type, event: JSON.parse(JSON.stringify(event)) }));
        }
        cd.on("sync-failed", (e) => state.events[id].push({ type: "sync-failed", at: Date.now(), event: { name: e?.name, code: e?.code, status: e?.status, retryAfterMs: e?.retryAfterMs, message: String(e?.message ?? e), isError: e instanceof Error } }));
        return { ok: true, value: cd.metadata() };
      } catch (e) {
        return { ok: false, error: { name: e?.name, code: e?.code, status: e?.status, message: String(e?.message ?? e), isError: e instanceof Error } };
      }
    },
    { id, spec },
  );
  if (!out.ok) throw new PageError(out.error);
  return out.value;
}

/**
 * Runs `fn(cd, arg, state)` in the page against instance `id` (fn is sent as source: no
 * closures). Resolves to its (serialisable) result; a throw in the page rejects with PageError.
 */
export async function withCd(page, id, fn, arg) {
  const out = await settles(page.evaluate(
    async ({ id, src, arg }) => {
      const state = window.__sync;
      try {
        const value = await (0, eval)(`(${src})`)(state.cds[id], arg, state);
        return { ok: true, value };
      } catch (e) {
        return { ok: false, error: { name: e?.name, code: e?.code, status: e?.status, message: String(e?.message ?? e), isError: e instanceof Error } };
      }
    },
    { id, src: fn.toString(), arg },
  ), page, `device ${id}: ${fn.toString().replace(/\s+/g, " ").slice(0, 160)}`);
  if (!out.ok) throw new PageError(out.error);
  return out.value;
}

/**
 * A page call that has not settled within STEP_TIMEOUT_MS (default 120 s) fails naming itself,
 * so a hung call (a browser whose IndexedDB transaction never ends, say) says which step of
 * which iteration it was instead of running into the test's own timeout.
 */
const STEP_TIMEOUT_MS = Number(process.env.E2E_STEP_TIMEOUT_MS ?? 120_000);
function settles(promise, page, what) {
  let timer;
  const late = new Promise((_, fail) => {
    timer = setTimeout(async () => {
      const idb = await Promise.race([idbProbe(page), new Promise((r) => setTimeout(() => r("the probe itself hung"), 15_000))]).catch((e) => `the probe failed: ${e.message}`);
      fail(new Error(`page call not settled within ${STEP_TIMEOUT_MS / 1000} s: ${what}; IndexedDB then: ${idb}`));
    }, STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** For a hung call's report: does a read-write transaction on each database still complete? */
function idbProbe(page) {
  return page.evaluate(async () => {
    const names = (await indexedDB.databases()).map((d) => d.name);
    const one = (name) => new Promise((done) => {
      const timer = setTimeout(() => done(`${name}: a read-write transaction did not complete within 5 s`), 5_000);
      const open = indexedDB.open(name);
      open.onerror = () => done(`${name}: open failed (${open.error})`);
      open.onblocked = () => done(`${name}: open blocked`);
      open.onsuccess = () => {
        const db = open.result;
        const tx = db.transaction(db.objectStoreNames[0], "readwrite");
        tx.oncomplete = () => { clearTimeout(timer); db.close(); done(`${name}: ok`); };
        tx.onabort = () => { clearTimeout(timer); db.close(); done(`${name}: aborted (${tx.error})`); };
      };
    });
    return (await Promise.all(names.map(one))).join("; ");
  });
}

/** `cd.sync(opts)` with onProgress recorded: { result, progress }. */
export function sync(page, id, opts = {}) {
  return withCd(
    page,
    id,
    async (cd, opts) => {
      const progress = [];
      const result = await cd.sync({ ...opts, onProgress: (p) => progress.push(JSON.parse(JSON.stringify(p))) });
      return { result, progress };
    },
    opts,
  );
}

/** `cd.exchange(opts)`. */
export function exchange(page, id, opts = {}) {
  return withCd(page, id, (cd, opts) => cd.exchange(opts), opts);
}

export function set(page, id, plugin, key, value) {
  return withCd(page, id, (cd, [p, k, v]) => cd.plugin(p).set(k, v), [plugin, key, value]);
}

export function del(page, id, plugin, key) {
  return withCd(page, id, (cd, [p, k]) => cd.plugin(p).delete(k), [plugin, key]);
}

export function get(page, id, plugin, key) {
  return withCd(page, id, (cd, [p, k]) => cd.plugin(p).get(k), [plugin, key]);
}

/** { plugin: { key: value } } of every live key of `plugins`. */
export function dump(page, id, plugins) {
  return withCd(
    page,
    id,
    (cd, plugins) =>
      Object.fromEntries(
        plugins.map((p) => {
          const kv = cd.plugin(p);
          return [p, Object.fromEntries(kv.keys({ limit: 100_000 }).map((k) => [k, kv.get(k)]))];
        }),
      ),
    plugins,
  );
}

/** The sync events instance `id` recorded so far ([{ type, event }]). */
export function events(page, id) {
  return page.evaluate((id) => window.__sync.events[id], id);
}

/** How often instance `id`'s token provider was called. */
export function tokenCalls(page, id) {
  return page.evaluate((id) => window.__sync.tokenCalls[id], id);
}

const parse = (text) => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};

/** The requesting node of an intercepted exchange, or undefined. */
function nodeOf(request) {
  return parse(request.postData() ?? "")?.node;
}

/**
 * Watches the exchanges of the context; `nodes` (optional) limits the log to those requesting
 * nodes. Entries: { node, authorization, request, status, reply }. stop() removes the route.
 */
export async function recordExchanges(context, nodes) {
  const log = [];
  const handler = async (route) => {
    const request = route.request();
    const body = parse(request.postData() ?? "");
    if (nodes && !nodes.includes(body?.node)) return route.fallback();
    const entry = { node: body?.node, authorization: request.headers().authorization, request: body };
    log.push(entry);
    let response;
    try {
      response = await route.fetch();
    } catch (e) {
      entry.failed = String(e);
      return route.abort().catch(() => {});
    }
    const text = await response.text();
    entry.status = response.status();
    entry.reply = parse(text);
    await route.fulfill({ response, body: text }).catch(() => {});
  };
  await context.route("**/sync/exchange", handler);
  return { log, stop: () => context.unroute("**/sync/exchange", handler) };
}

/**
 * Routes node `node`'s exchanges through `answer(route, request)`, which must settle the route;
 * every other node's go on untouched. Returns { calls, stop }.
 */
export async function interceptNode(context, node, answer) {
  const calls = [];
  const handler = async (route) => {
    const request = route.request();
    if (nodeOf(request) !== node) return route.fallback();
    calls.push(parse(request.postData() ?? ""));
    await answer(route, request);
  };
  await context.route("**/sync/exchange", handler);
  return { calls, stop: () => context.unroute("**/sync/exchange", handler) };
}

/** Node `node`'s replies pass through `modify(json, request)` (its return value is sent). */
export function tamperNode(context, node, modify) {
  return interceptNode(context, node, async (route, request) => {
    const response = await route.fetch();
    const json = await response.json();
    const body = modify(json, parse(request.postData() ?? ""));
    const headers = { ...response.headers(), "content-type": "application/json" };
    delete headers["content-length"];
    await route.fulfill({ status: response.status(), headers, body: typeof body === "string" ? body : JSON.stringify(body) });
  });
}

/** HLC text: 12 hex wall ms, 4 hex counter, 16 hex node. */
export function hlc(wallMs, counter, node) {
  return `${Math.floor(wallMs).toString(16).padStart(12, "0")}-${counter.toString(16).padStart(4, "0")}-${node}`;
}

/** The wall-clock milliseconds of HLC text. */
export function hlcWall(text) {
  return parseInt(text.slice(0, 12), 16);
}

export async function poll(fn, timeoutMs, intervalMs = 50) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > end) return value;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
