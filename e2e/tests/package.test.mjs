// The package as users meet it: the swamp datastore and wasi:keyvalue adapters shipped in pkg/,
// and the demo page rendering for real (screenshot checked to be non-blank).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../lib/server.mjs";
import { harness } from "../lib/harness.mjs";
import { openDevice } from "../lib/browser.mjs";

const h = harness();

test("the swamp datastore: shape, config schema, provider contract", async () => {
  const context = await h.browser.newContext();
  const page = await openDevice(context, h.server.url, `swamp${Date.now()}`);
  const r = await page.evaluate(async (origin) => {
    const { datastore } = await import("/pkg/swamp.js");
    const s = datastore.configSchema;
    const user = "swamp" + Date.now();
    const config = { name: "swamp-" + user, server: origin, token: `dev-token-${user}` };
    const rejected = [
      null, "x", {}, { name: "" }, { name: 5 }, { name: "a", server: "ftp://x" }, { name: "a", token: "t" },
      { name: "a", server: origin, token: 7 }, { name: "a", autoSync: true }, { name: "a", engine: "disk" }, { name: "a", extra: 1 },
    ].map((c) => s.safeParse(c));
    const provider = datastore.createProvider(config);
    let threw = null;
    try { datastore.createProvider({ name: "" }); } catch (e) { threw = { name: e.name, code: e.code, issues: e.issues.length }; }
    const lock = provider.createLock("exports/report", { ttlMs: 5000 });
    const free = await lock.inspect();
    const held = await lock.withLock(async () => (await lock.inspect())?.holder);
    const cd = await provider.open();
    cd.plugin("notes").set("a", 1);
    cd.plugin("notes").set("b", 2);
    const svc = provider.createSyncService();
    const pushed = await svc.pushChanged();
    const report = await provider.createVerifier().verify();
    await provider.close();
    return {
      type: datastore.type, name: datastore.name, description: datastore.description,
      valid: s.safeParse(config).success, rejected: rejected.map((x) => x.success), firstIssue: rejected[3].error.issues[0].path[0],
      methods: ["createLock", "createVerifier", "resolveDatastorePath", "createSyncService", "resolveCachePath"].map((m) => typeof provider[m]),
      path: provider.resolveDatastorePath(), cache: provider.resolveCachePath(), threw, free, held: typeof held,
      pushed, capabilities: svc.capabilities(), healthy: report.healthy, message: report.message,
    };
  }, h.server.url);
  assert.match(r.type, /^@[a-z0-9-]+\/[a-z0-9-]+$/);
  assert.ok(r.name.length > 0 && r.description.length > 0);
  assert.equal(r.valid, true);
  assert.deepEqual(r.rejected, r.rejected.map(() => false), "every invalid config is rejected");
  assert.equal(r.firstIssue, "name");
  assert.deepEqual(r.methods, ["function", "function", "function", "function", "function"]);
  assert.ok(typeof r.path === "string" && r.path.length > 0 && r.cache.length > 0);
  assert.deepEqual(r.threw, { name: "InvalidOptionsError", code: "invalid_options", issues: 1 });
  assert.equal(r.free, null);
  assert.equal(r.held, "string");
  assert.equal(r.pushed, 2);
  assert.deepEqual(r.capabilities, { scopedSync: true, lazyHydration: true });
  assert.equal(r.healthy, true, r.message);
  await context.close();
});

test("the wasi:keyvalue bucket: bytes round trip, exists, delete, listKeys pages, typed errors", async () => {
  const context = await h.browser.newContext();
  const page = await openDevice(context, h.server.url, `wasi${Date.now()}`);
  const r = await page.evaluate(async () => {
    const { keyValueStore, LIST_PAGE } = await import("/pkg/wasi-keyvalue.js");
    const store = keyValueStore(window.clientdata);
    const bucket = store.open("wasi-bucket");
    bucket.set("k", new Uint8Array([1, 2, 3]));
    const got = bucket.get("k");
    const missing = bucket.get("nope");
    const exists = [bucket.exists("k"), bucket.exists("nope")];
    bucket.delete("k");
    bucket.delete("never-there");
    const afterDelete = [bucket.exists("k"), bucket.get("k")];
    const n = LIST_PAGE * 2 + 500;
    for (let i = 0; i < n; i++) bucket.set(`key-${String(i).padStart(5, "0")}`, new Uint8Array([i & 255]));
    window.clientdata.plugin("wasi-bucket").set("json", { not: "bytes" });
    const pages = [];
    let cursor;
    do {
      const page = bucket.listKeys(cursor);
      pages.push(page.keys.length);
      cursor = page.cursor;
    } while (cursor !== undefined && pages.length < 10);
    const errors = [];
    const grab = (fn) => { try { fn(); errors.push(null); } catch (e) { errors.push(e.name); } };
    grab(() => bucket.get("json"));
    grab(() => bucket.set("x", "a string"));
    grab(() => store.open("Not A Plugin Id"));
    grab(() => bucket.listKeys(5));
    return { got: got && [...got], gotType: got?.constructor.name, missing, exists, afterDelete, pages, errors, n };
  });
  assert.deepEqual(r.got, [1, 2, 3]);
  assert.equal(r.gotType, "Uint8Array");
  assert.equal(r.missing, undefined);
  assert.deepEqual(r.exists, [true, false]);
  assert.deepEqual(r.afterDelete, [false, undefined]);
  assert.deepEqual(r.pages, [1000, 1000, 501], "3 pages cover every key (the JSON one included) exactly once");
  assert.deepEqual(r.errors, ["InvalidValueError", "InvalidValueError", "InvalidPluginIdError", "InvalidOptionsError"]);
  await context.close();
});

test("the demo renders: three device panels open, a screenshot that is not blank", async () => {
  const context = await h.browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${h.server.url}/index.html`);
  await page.waitForFunction(() => [...document.querySelectorAll("iframe")].every((f) => f.contentWindow?.clientdata), null, { timeout: 30_000 });
  const titles = await page.evaluate(() => [...document.querySelectorAll("iframe")].map((f) => f.contentDocument.getElementById("title").textContent));
  assert.deepEqual(titles, ["device A, tab 1", "device A, tab 2", "device B, tab 1"]);
  const shot = await page.screenshot({ fullPage: true });
  const blankPage = await context.newPage();
  await blankPage.goto("about:blank");
  const blank = await blankPage.screenshot({ fullPage: true });
  mkdirSync(join(ROOT, "e2e", "out"), { recursive: true });
  writeFileSync(join(ROOT, "e2e", "out", "demo.png"), shot);
  // A PNG of a blank page compresses to almost nothing; the demo's text and panels do not.
  assert.ok(shot.length > 10 * blank.length, `demo screenshot ${shot.length} bytes vs blank ${blank.length}`);
  await context.close();
});
