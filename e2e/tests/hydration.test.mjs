// Lazy hydration end to end (protocol v2): values above sync.lazyThreshold (32 KiB) sync as
// metadata, their content moves through /sync/content/{sha256} of the real server and is
// fetched on demand (getAsync, hydrateFile) or eagerly per plugin, checked against its SHA-256.
// Faults (a content fetch that fails, content that was altered) are played with Playwright's
// routing between the page and the real server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { harness } from "../lib/harness.mjs";
import { unique, devicePage, openInstance, withCd, sync, set, get, PageError } from "../lib/sync.mjs";

const h = harness();
const { scenario } = h;

const MiB = 1 << 20;
/** A JSON string value of `size` bytes of JSON text (quotes included). */
const bigString = (fill, size = MiB) => fill.repeat(size - 2);
const sha256 = (text) => createHash("sha256").update(text).digest("hex");

/** A page with instances `ids`, each its own database, of one user and one dataset. */
async function devices(context, ids, specs = {}) {
  const page = await devicePage(context, h.server.url);
  const user = unique("user");
  const names = {};
  for (const id of ids) {
    names[id] = unique(`db${id}`);
    await openInstance(page, id, { name: names[id], user, ...(specs[id] ?? {}) });
  }
  return { page, user, names };
}

/** Counts the content requests of the context by method: { PUT, GET, urls }. */
function contentTraffic(context) {
  const seen = { PUT: 0, GET: 0, urls: [] };
  context.on("request", (r) => {
    if (!r.url().includes("/sync/content/")) return;
    seen[r.method()] = (seen[r.method()] ?? 0) + 1;
    seen.urls.push(`${r.method()} ${r.url()}`);
  });
  return seen;
}

async function rejects(promise) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof PageError, String(e));
    return e;
  }
  assert.fail("expected a rejection");
}

scenario("a large value syncs as metadata: get throws NotHydratedError until getAsync or hydrateFile fetch it", async (context) => {
  const traffic = contentTraffic(context);
  const { page, user, names } = await devices(context, ["A", "B"]);
  const big = bigString("a");
  await withCd(page, "A", async (cd, big) => {
    const kv = cd.plugin("files");
    await kv.setAsync("big", big);
    await kv.setAsync("blob", new Uint8Array(100_000).map((_, i) => i % 251));
    kv.set("small", { n: 1 });
    kv.set("edge", "x".repeat(32 * 1024 - 2)); // exactly the threshold: inline
  }, big);
  const a = (await sync(page, "A")).result;
  assert.equal(a.shipped, 4);
  assert.equal(traffic.PUT, 2, "two values above 32 KiB uploaded");
  assert.ok(traffic.urls.some((u) => u.includes(sha256(JSON.stringify(big)))), "addressed by SHA-256");

  // B: a metadata-only pull moves no content at all.
  const pulled = await withCd(page, "B", (cd) => cd.createSyncService().pullChanged({ metadataOnly: true }));
  assert.equal(pulled, 4);
  assert.equal(traffic.GET, 0, "metadata only");
  assert.deepEqual(await get(page, "B", "files", "small"), { n: 1 });
  assert.equal((await get(page, "B", "files", "edge")).length, 32 * 1024 - 2);
  const e = await rejects(get(page, "B", "files", "big"));
  assert.equal(e.name, "NotHydratedError");
  assert.equal(e.code, "not_hydrated");
  const named = await withCd(page, "B", (cd) => {
    try {
      cd.plugin("files").get("big");
    } catch (e) {
      return { plugin: e.plugin, key: e.key, has: cd.plugin("files").has("big"), keys: cd.plugin("files").keys() };
    }
  });
  assert.deepEqual(named, { plugin: "files", key: "big", has: true, keys: ["big", "blob", "edge", "small"] });
  assert.deepEqual(await withCd(page, "B", (cd) => cd.createSyncService().capabilities()), { scopedSync: true, lazyHydration: true });

  // getAsync fetches, checks and stores: get answers from then on without another fetch.
  const value = await withCd(page, "B", (cd) => cd.plugin("files").getAsync("big"));
  assert.equal(value, big);
  assert.equal(traffic.GET, 1);
  assert.equal(await get(page, "B", "files", "big"), big);
  assert.equal(await withCd(page, "B", (cd) => cd.plugin("files").getAsync("small").then((v) => v.n)), 1);
  assert.equal(traffic.GET, 1, "nothing fetched for a local value");

  // hydrateFile fetches one path.
  await withCd(page, "B", (cd) => cd.createSyncService().hydrateFile("files/blob"));
  assert.equal(traffic.GET, 2);
  const blob = await withCd(page, "B", (cd) => {
    const b = cd.plugin("files").get("blob");
    return { isBytes: b instanceof Uint8Array, length: b.length, ok: b.every((x, i) => x === i % 251) };
  });
  assert.deepEqual(blob, { isBytes: true, length: 100_000, ok: true });

  // Hydration is durable: B reopened reads both from IndexedDB, without the network.
  await withCd(page, "B", (cd) => cd.close());
  await openInstance(page, "B2", { name: names.B, user });
  assert.equal(await get(page, "B2", "files", "big"), big);
  assert.equal(await withCd(page, "B2", (cd) => cd.plugin("files").get("blob").length), 100_000);
  assert.equal(traffic.GET, 2, "no fetch after reopening");
});

scenario("eager hydration per plugin; a failed content fetch holds back only that node's watermark", async (context) => {
  const traffic = contentTraffic(context);
  const { page } = await devices(context, ["A", "C", "B"], { B: { sync: { dataset: "devices", eagerHydration: ["eager"] } } });
  const fromA = bigString("a", 40_000);
  const fromC = bigString("c", 50_000);
  await withCd(page, "A", async (cd, v) => {
    await cd.plugin("eager").setAsync("k1", v);
    cd.plugin("eager").set("k2", "after k1");
    cd.plugin("lazy").set("x", "A elsewhere");
    await cd.flush();
  }, fromA);
  await withCd(page, "C", async (cd, v) => {
    await cd.plugin("eager").setAsync("c1", v);
    cd.plugin("eager").set("c2", "small from C");
    await cd.flush();
  }, fromC);
  await sync(page, "A");
  await sync(page, "C");

  // A's content cannot be had: the route answers it with a network failure.
  const failing = `**/sync/content/${sha256(JSON.stringify(fromA))}**`;
  await context.route(failing, (route) => route.abort());
  const first = (await sync(page, "B")).result;
  assert.equal(first.contentFailures, 1);
  assert.equal(await get(page, "B", "eager", "c1"), fromC, "C's value hydrated within the round");
  assert.equal(await get(page, "B", "eager", "c2"), "small from C");
  assert.equal(await get(page, "B", "eager", "k1"), undefined, "A's failed record not applied");
  assert.equal(await get(page, "B", "eager", "k2"), undefined, "nor anything of A after it in that plugin");
  assert.equal(await get(page, "B", "lazy", "x"), "A elsewhere", "A's node advances in the other plugin");

  // The content is back: the next sync pulls A's held-back records again and hydrates them.
  await context.unroute(failing);
  const gets = traffic.GET;
  const second = (await sync(page, "B")).result;
  assert.equal(second.contentFailures, 0);
  assert.equal(second.applied, 2, "exactly A's two held-back records");
  assert.equal(traffic.GET, gets + 1);
  assert.equal(await get(page, "B", "eager", "k1"), fromA);
  assert.equal(await get(page, "B", "eager", "k2"), "after k1");
});

scenario("forged content is refused: ContentHashMismatchError, nothing stored", async (context) => {
  const { page } = await devices(context, ["A", "B"]);
  const real = bigString("r", 64 * 1024);
  await withCd(page, "A", (cd, v) => cd.plugin("files").setAsync("doc", v), real);
  await sync(page, "A");
  await sync(page, "B");
  const url = `**/sync/content/${sha256(JSON.stringify(real))}**`;
  // Same size, other bytes: a proxy or server that altered the content.
  const forged = JSON.stringify(bigString("f", 64 * 1024));
  await context.route(url, (route) =>
    route.fulfill({ status: 200, headers: { "content-type": "application/octet-stream" }, body: forged }));
  const e = await rejects(withCd(page, "B", (cd) => cd.plugin("files").getAsync("doc")));
  assert.equal(e.name, "ContentHashMismatchError");
  assert.equal(e.code, "content_hash_mismatch");
  const e2 = await rejects(withCd(page, "B", (cd) => cd.createSyncService().hydrateFile("files/doc")));
  assert.equal(e2.code, "content_hash_mismatch");
  assert.equal((await rejects(get(page, "B", "files", "doc"))).code, "not_hydrated", "nothing stored");
  await context.unroute(url);
  assert.equal(await withCd(page, "B", (cd) => cd.plugin("files").getAsync("doc")), real);
});

scenario("values up to 8 MiB: setAsync takes them, the synchronous set stops at 64 KiB", async (context) => {
  const { page } = await devices(context, ["A", "B"]);
  const out = await withCd(page, "A", async (cd) => {
    const kv = cd.plugin("files");
    const eight = new Uint8Array(8 * 1024 * 1024).fill(7);
    await kv.setAsync("eight", eight);
    const errors = {};
    try {
      kv.set("sync-big", "x".repeat(70_000));
    } catch (e) {
      errors.sync = e.code;
    }
    try {
      await kv.setAsync("too-big", new Uint8Array(8 * 1024 * 1024 + 1));
    } catch (e) {
      errors.async = e.code;
    }
    return { errors, has: kv.has("sync-big") || kv.has("too-big") };
  });
  assert.deepEqual(out, { errors: { sync: "value_too_large", async: "value_too_large" }, has: false });
  await sync(page, "A");
  await sync(page, "B");
  const back = await withCd(page, "B", async (cd) => {
    const v = await cd.plugin("files").getAsync("eight");
    return { length: v.length, ok: v.every((b) => b === 7) };
  });
  assert.deepEqual(back, { length: 8 * 1024 * 1024, ok: true });
});

scenario("hydration throughput for 1 MiB values (prints MB/s)", async (context) => {
  const { page } = await devices(context, ["A", "B"]);
  const n = 16;
  await withCd(page, "A", async (cd, n) => {
    const kv = cd.plugin("media");
    for (let i = 0; i < n; i++) await kv.setAsync(`v${i}`, new Uint8Array(1 << 20).fill(i));
  }, n);
  await sync(page, "A");
  await sync(page, "B");
  const ms = await withCd(page, "B", async (cd, n) => {
    const kv = cd.plugin("media");
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const v = await kv.getAsync(`v${i}`);
      if (v.length !== 1 << 20 || v[0] !== i) throw new Error(`v${i} wrong`);
    }
    return performance.now() - t0;
  }, n);
  const mbps = (n * (1 << 20)) / 1e6 / (ms / 1000);
  console.log(`hydration throughput: ${n} x 1 MiB in ${ms.toFixed(0)} ms = ${mbps.toFixed(1)} MB/s (fetch + SHA-256 + IndexedDB commit, sequential getAsync)`);
  assert.ok(mbps > 0);
});

scenario("malformed hydration options are refused at open with InvalidOptionsError", async (context) => {
  const page = await devicePage(context, h.server.url);
  const user = unique("user");
  const cases = [
    [{ eagerHydration: "notes" }, "InvalidOptionsError"],
    [{ eagerHydration: ["Not An Id"] }, "InvalidPluginIdError"],
    [{ lazyThreshold: (1 << 20) + 1 }, "InvalidOptionsError"],
    [{ lazyThreshold: -1 }, "InvalidOptionsError"],
  ];
  for (const [sync, name] of cases) {
    const e = await rejects(openInstance(page, "X", { name: unique("dbX"), user, sync: { dataset: "devices", ...sync } }));
    assert.equal(e.name, name, JSON.stringify(sync));
  }
});

test("the file's scenarios ran against the real server", () => {
  assert.ok(h.server.url.startsWith("http://127.0.0.1:"));
});
