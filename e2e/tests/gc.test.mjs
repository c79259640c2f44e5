// Tombstone collection with a horizon (issue 16), end to end: Debian's Chromium against the real
// reference server started with a short horizon (--tombstone-horizon-secs 2). Device B is offline
// past the horizon while A deletes and the server collects; B comes back, is told to run a full
// resync, converges, and keeps (then pushes) what it wrote offline. A second test times the full
// resync of 10,000 records. Two devices are two databases of one user naming one dataset.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../lib/server.mjs";
import { launch } from "../lib/browser.mjs";
import { unique, devicePage, openInstance, withCd, sync, set, del, dump } from "../lib/sync.mjs";

const HORIZON_SECS = 2;
const past = () => new Promise((r) => setTimeout(r, HORIZON_SECS * 1000 + 700));
let server;
let browser;

before(async () => {
  server = await startServer({ extraArgs: ["--tombstone-horizon-secs", String(HORIZON_SECS)] });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A page with devices A and B of one new user. */
async function devices(context) {
  const page = await devicePage(context, server.url);
  const user = unique("user");
  for (const id of ["A", "B"]) await openInstance(page, id, { name: unique(`gc${id}`), user });
  return page;
}

test("a device offline past the horizon runs a full resync, converges and keeps its offline writes", { timeout: 120_000 }, async () => {
  const context = await browser.newContext();
  try {
    const page = await devices(context);
    for (const k of ["k1", "k2", "k3"]) await set(page, "A", "notes", k, { k });
    await sync(page, "A");
    const first = (await sync(page, "B")).result;
    assert.equal(first.kind, "partial");
    assert.deepEqual([first.upserts, first.deletions], [3, 0]);

    // B goes offline (it runs no round) and writes; A deletes two keys and syncs.
    await set(page, "B", "notes", "offline", "written by B offline");
    await set(page, "B", "notes", "k3", "B's edit of k3, offline");
    await del(page, "A", "notes", "k1");
    await del(page, "A", "notes", "k2");
    await sync(page, "A");
    // Past the horizon nothing waits for B: A's next round collects both tombstones, and A
    // drops its own copies once the reply reports them collected.
    await past();
    await set(page, "A", "notes", "k4", "after the horizon");
    await sync(page, "A");
    await sync(page, "A");

    // B comes back: the server says fullResync; B walks, removes k1 and k2, keeps its writes.
    const back = (await sync(page, "B")).result;
    assert.equal(back.kind, "full", JSON.stringify(back));
    assert.ok(back.deletions >= 2, `deletions ${JSON.stringify(back)}`);
    assert.ok(back.shipped >= 2, `B's offline writes pushed after the walk: ${JSON.stringify(back)}`);
    const bView = await dump(page, "B", ["notes"]);
    assert.deepEqual(Object.keys(bView.notes).sort(), ["k3", "k4", "offline"]);
    assert.equal(bView.notes.k3, "B's edit of k3, offline");
    // A pulls B's offline writes; both hold the same set, and the next rounds are partial.
    const a = (await sync(page, "A")).result;
    assert.equal(a.kind, "partial");
    assert.deepEqual(await dump(page, "A", ["notes"]), bView);
    const again = (await sync(page, "B")).result;
    assert.equal(again.kind, "partial");
    assert.equal(again.applied + again.shipped, 0);
  } finally {
    await context.close();
  }
});

test("a walk interrupted by a failed page continues after its last applied page", { timeout: 120_000 }, async () => {
  const context = await browser.newContext();
  try {
    const page = await devices(context);
    await withCd(page, "A", async (cd) => {
      const kv = cd.plugin("walk");
      await kv.setMany(Array.from({ length: 50 }, (_, i) => [`r${String(i).padStart(2, "0")}`, i]));
      await kv.flush();
    });
    await sync(page, "A");
    await sync(page, "B");
    for (const i of [3, 17, 41]) await del(page, "A", "walk", `r${String(i).padStart(2, "0")}`);
    await sync(page, "A");
    await past();
    await set(page, "A", "walk", "poke", 1);
    await sync(page, "A");

    // B's walk (pages of 10): the third page fails with a 400 (not retried), the sync fails.
    const asked = [];
    let failing = true;
    await context.route("**/sync/resync", async (route) => {
      const body = route.request().postDataJSON();
      asked.push(body.after ?? null);
      if (failing && asked.length === 3) {
        await route.fulfill({ status: 400, contentType: "application/json", body: JSON.stringify({ code: "invalid_request", message: "test: page refused" }) });
      } else {
        await route.continue();
      }
    });
    await assert.rejects(sync(page, "B", { limit: 10 }), (e) => e.code === "invalid_request");
    failing = false;
    const before = asked.length;
    const back = (await sync(page, "B", { limit: 10 })).result;
    assert.equal(back.kind, "full", JSON.stringify(back));
    // The second walk starts at the refused page's cursor, not from the start.
    assert.deepEqual(asked[before], asked[2], `resumed at ${JSON.stringify(asked[before])}`);
    assert.notEqual(asked[before], null);
    const b = await dump(page, "B", ["walk"]);
    assert.deepEqual(b, await dump(page, "A", ["walk"]));
    assert.equal(Object.keys(b.walk).length, 48);
    console.log(`interrupted walk: first attempt asked ${before} pages (the third refused), the second ${asked.length - before} from ${JSON.stringify(asked[before])}`);
  } finally {
    await context.close();
  }
});

test("full resync of 10,000 records (timed)", { timeout: 300_000 }, async () => {
  const count = 10_000;
  const deleted = 100;
  const context = await browser.newContext();
  try {
    const page = await devices(context);
    await withCd(page, "A", async (cd, n) => {
      const kv = cd.plugin("bulk");
      await kv.setMany(Array.from({ length: n }, (_, i) => [`r${String(i).padStart(5, "0")}`, { i, pad: "x".repeat(64) }]));
      await kv.flush();
    }, count);
    await sync(page, "A");
    await sync(page, "B");
    await set(page, "B", "bulk", "offline", 1);
    await withCd(page, "A", async (cd, n) => {
      const kv = cd.plugin("bulk");
      for (let i = 0; i < n; i++) kv.delete(`r${String(i * 7).padStart(5, "0")}`);
      await kv.flush();
    }, deleted);
    await sync(page, "A");
    await past();
    await set(page, "A", "bulk", "poke", 1);
    await sync(page, "A");
    const started = Date.now();
    const back = (await sync(page, "B")).result;
    const ms = Date.now() - started;
    assert.equal(back.kind, "full", JSON.stringify(back));
    assert.equal(back.deletions, deleted, JSON.stringify(back));
    const held = await withCd(page, "B", (cd) => cd.plugin("bulk").keys({ limit: 100_000 }).length);
    assert.equal(held, count - deleted + 2, "the live set, A's poke and B's offline write");
    console.log(`full resync of ${count} records (${deleted} deleted while offline, collected): ${ms} ms for the sync (${back.rounds} rounds: the walk, then the partial round that pushed B's write), ${JSON.stringify(back)}`);
  } finally {
    await context.close();
  }
});
