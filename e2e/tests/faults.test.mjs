// Faults injected at every step of a sync round, in the real browser against the real server
// (the reliability proof of docs/ARCHITECTURE.md). Each point runs ITERATIONS times (20 here;
// FAULT_ITERATIONS=200 by hand for a long run) with random writes, overwrites and deletes drawn
// from a seeded generator: the seed is printed, and FAULT_SEED=N replays a run.
//
// Every iteration checks the same promise: every write that `set`/`delete` acknowledged is
// still on its device after the fault, the next clean rounds converge both devices of the user
// on exactly those writes (a watermark that ran past a record the device never durably applied
// would leave that record missing here forever), and the failed round surfaced as a typed error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { harness } from "../lib/harness.mjs";
import { unsupported } from "../lib/browser.mjs";
import { startServer } from "../lib/server.mjs";
import { unique, freePort, devicePage, openInstance, withCd, sync, dump, interceptNode, recordExchanges, PageError } from "../lib/sync.mjs";

const ITERATIONS = Number(process.env.FAULT_ITERATIONS ?? 20);
const SEED = Number(process.env.FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`faults: seed ${SEED} (FAULT_SEED=${SEED} replays), ${ITERATIONS} iterations per point`);

const h = harness();
const PLUGIN = "faults";
const KEYS = Array.from({ length: 12 }, (_, i) => `k${i}`);

/** mulberry32: small, seeded, good enough to pick writes and delays. */
function generator(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (xs) => xs[Math.floor(next() * xs.length)] };
}
// Each point draws from its own stream, so one point's changes never shift another's draws.
const streamOf = (point) => generator(SEED ^ [...point].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619), 2166136261));

/**
 * 1–8 random sets and deletes on instance `id`, applied in the page one by one; `model` (the
 * user's acknowledged state, key → value) takes each one the store acknowledged.
 */
async function writeRandom(page, id, rng, model) {
  const ops = [];
  for (let n = 1 + rng.int(8); n > 0; n--) {
    const key = rng.pick(KEYS);
    if (model.has(key) && rng.next() < 0.25) ops.push({ key, del: true });
    else ops.push({ key, value: rng.next() < 0.5 ? rng.int(1e6) : { text: `v${rng.int(1e6)}`, at: rng.int(1e3) } });
  }
  const acked = await withCd(
    page,
    id,
    (cd, [plugin, ops]) => {
      const kv = cd.plugin(plugin);
      return ops.map((op) => {
        try {
          if (op.del) kv.delete(op.key);
          else kv.set(op.key, op.value);
          return true;
        } catch {
          return false;
        }
      });
    },
    [PLUGIN, ops],
  );
  ops.forEach((op, i) => {
    assert.ok(acked[i], `write ${JSON.stringify(op)} refused without a fault`);
    if (op.del) model.delete(op.key);
    else model.set(op.key, op.value);
  });
}

const expected = (model) => ({ [PLUGIN]: Object.fromEntries([...model].sort(([a], [b]) => (a < b ? -1 : 1))) });
const sorted = (d) => ({ [PLUGIN]: Object.fromEntries(Object.entries(d[PLUGIN]).sort(([a], [b]) => (a < b ? -1 : 1))) });

/** A round that must fail: resolves to the typed error it failed with. */
async function failingSync(page, id, opts, what) {
  try {
    const out = await sync(page, id, opts);
    assert.fail(`${what}: sync succeeded (${JSON.stringify(out.result)})`);
  } catch (e) {
    if (!(e instanceof PageError)) throw e;
    assert.ok(e.isError && typeof e.code === "string" && e.code.length > 0, `${what}: untyped failure ${e.name}: ${e.message}`);
    return e;
  }
}

/** Clean rounds on both devices, then both hold exactly the acknowledged writes. */
async function converge(page, model, what) {
  await sync(page, "A");
  await sync(page, "B");
  await sync(page, "A");
  assert.deepEqual(sorted(await dump(page, "A", [PLUGIN])), expected(model), `${what}: device A`);
  assert.deepEqual(sorted(await dump(page, "B", [PLUGIN])), expected(model), `${what}: device B`);
}

/** One page with devices A and B of a fresh user on `server` (default: the page's origin). */
async function pair(context, server) {
  const page = await devicePage(context, h.server.url);
  const user = unique("user");
  const nodes = {};
  const names = {};
  for (const id of ["A", "B"]) {
    names[id] = unique(`db${id}`);
    // One retry instead of the default two: the retry path is still taken (a lost reply is
    // retried and must succeed), and a persistent fault fails its round sooner.
    nodes[id] = (await openInstance(page, id, { name: names[id], user, server, sync: { retries: 1 } })).nodeId;
  }
  return { page, nodes, names };
}

/**
 * Runs `inject(ctx)` ITERATIONS times: before each, device A writes at random; `inject` makes a
 * round fail at its point; then the devices must converge.
 */
function point(name, inject, { server, skip = false } = {}) {
  test(`fault: ${name}`, { timeout: 300_000, skip }, async () => {
    const rng = streamOf(name);
    const context = await h.browser.newContext();
    try {
      const { page, nodes, names } = await pair(context, server?.());
      const model = new Map();
      for (let i = 0; i < ITERATIONS; i++) {
        await writeRandom(page, "A", rng, model);
        const what = `${name}, iteration ${i} (seed ${SEED})`;
        try {
          await inject({ context, page, nodes, names, rng, model, what });
          await converge(page, model, what);
        } catch (e) {
          // Name the iteration and seed on every failure, a hung page call's included.
          if (!e.message.includes(what)) e.message += ` [${what}]`;
          throw e;
        }
      }
    } finally {
      await context.close();
    }
  });
}

// The request never reaches the server.
point("the request fails before it is sent", async ({ context, page, nodes, what }) => {
  const route = await interceptNode(context, nodes.A, (r) => r.abort("connectionreset"));
  await failingSync(page, "A", {}, what);
  await route.stop();
});

// The server applied the push and answered, but the answer never arrives. The round retries
// (a lost reply is transient) and sends the push again, which must change nothing the second
// time; convergence below checks that.
point("the server applied a push, its reply is lost", async ({ context, page, nodes, what }) => {
  const route = await interceptNode(context, nodes.A, async (r) => {
    if (route.calls.length > 1) return r.continue();
    const response = await r.fetch();
    assert.equal(response.status(), 200, `${what}: the push itself`);
    await r.abort("connectionreset");
  });
  await sync(page, "A");
  assert.equal(route.calls.length, 2, `${what}: the lost exchange and its retry`);
  await route.stop();
});

// Device B pulls A's writes and gets a reply cut short at a random byte.
point("a truncated reply", async ({ context, page, nodes, rng, what }) => {
  await sync(page, "A");
  const route = await interceptNode(context, nodes.B, async (r) => {
    const response = await r.fetch();
    const body = await response.body();
    const cut = body.subarray(0, rng.int(body.length));
    await r.fulfill({ status: response.status(), headers: { "content-type": "application/json" }, body: cut });
  });
  await failingSync(page, "B", {}, what);
  await route.stop();
});

// B pulls in pages of one record; from page 2 on every exchange fails (retries included), so
// the sync fails. Page 1 stays applied; the next sync picks up where the watermark says.
point("a failure on page 2 of a hasMore sequence", async ({ context, page, nodes, rng, model, what }) => {
  // Two new values, so B has at least two records to pull and a page 2 exists.
  const fresh = [["k0", `p2-${rng.int(1e9)}`], ["k1", `p2-${rng.int(1e9)}`]];
  await withCd(page, "A", (cd, [p, entries]) => entries.forEach(([k, v]) => cd.plugin(p).set(k, v)), [PLUGIN, fresh]);
  for (const [k, v] of fresh) model.set(k, v);
  await sync(page, "A");
  let seen = 0;
  const route = await interceptNode(context, nodes.B, async (r) => {
    seen += 1;
    if (seen >= 2) return r.abort("connectionreset");
    return r.continue();
  });
  const before = await dump(page, "B", [PLUGIN]);
  const e = await failingSync(page, "B", { limit: 1 }, what);
  assert.ok(seen >= 2, `${what}: ${seen} exchange(s) before the failure (${e.code})`);
  const after = await dump(page, "B", [PLUGIN]);
  assert.notDeepEqual(after, before, `${what}: page 1 was not kept`);
  await route.stop();
});

// B's IndexedDB transaction that applies a pulled page aborts (as a quota error does). Only B's
// database is touched: A's own commits go on.
point("an IndexedDB transaction aborted mid-apply", async ({ page, names, what }) => {
  await sync(page, "A");
  await page.evaluate((db) => {
    const put = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = function (...args) {
      const request = put.apply(this, args);
      if (this.transaction.db.name === db) {
        IDBObjectStore.prototype.put = put;
        this.transaction.abort();
      }
      return request;
    };
    window.__restorePut = () => (IDBObjectStore.prototype.put = put);
  }, names.B);
  try {
    await failingSync(page, "B", {}, what);
  } finally {
    await page.evaluate(() => window.__restorePut());
  }
});

// The network goes away for a while (the whole browser context offline), then comes back.
point("the network offline for a while, then back", async ({ context, page, rng, model, what }) => {
  await context.setOffline(true);
  try {
    await failingSync(page, "A", {}, what);
    await writeRandom(page, "A", rng, model); // writes while offline are kept for later
    await failingSync(page, "B", {}, what);
  } finally {
    await context.setOffline(false);
  }
}, { skip: unsupported({ webkit: "classic WebDriver has no network emulation (no offline mode); Chromium's CDP and Firefox's BiDi have one" }) });

// A server killed (SIGKILL) while it holds a push: it is started again on the same address and
// database, and whatever it had not committed is pushed again.
{
  const dir = mkdtempSync(join(tmpdir(), "clientdata-faults-"));
  const database = join(dir, "killed.sqlite");
  let listen = null;
  let server = null;
  let killedMidRound = 0;
  const start = async () => {
    for (let attempt = 0; ; attempt++) {
      try {
        server = await startServer({ listen, database, env: { CLIENTDATA_TEST_APPLY_DELAY_MS: "400" }, extraArgs: ["--allow-origin", h.server.url] });
        return;
      } catch (e) {
        if (attempt >= 20) throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  };
  test("fault: the server killed mid-transaction (setup)", async () => {
    listen = `127.0.0.1:${await freePort()}`;
    await start();
  });
  point(
    "the server killed mid-transaction",
    async ({ page, rng, what }) => {
      const pending = sync(page, "A").then(
        () => null,
        (e) => e,
      );
      await new Promise((r) => setTimeout(r, 20 + rng.int(200)));
      server.child.kill("SIGKILL");
      await server.stop(); // waits for the exit, removes the server's temp directory

      const e = await pending;
      // The kill may land after the round finished (a short push); then nothing failed.
      if (e) {
        assert.ok(e instanceof PageError && e.isError && e.code, `${what}: untyped failure ${e}`);
        killedMidRound += 1;
      }
      await start();
    },
    { server: () => `http://${listen}` },
  );
  test("fault: the server killed mid-transaction (teardown)", async () => {
    console.log(`faults: server killed ${ITERATIONS} times; ${killedMidRound} kills failed the round in flight`);
    assert.ok(killedMidRound >= ITERATIONS / 2, `only ${killedMidRound} of ${ITERATIONS} kills landed inside a round`);
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
}

// A tab killed (renderer crash) in the middle of pulling 10,000 records; a new tab of the same
// device opens the database again and syncs to exactly the server's set.
test("fault: the tab killed mid-round during a 10k pull", {
  timeout: 600_000,
  skip: unsupported({
    firefox: "needs a hard tab crash (CDP Page.crash); WebDriver BiDi can only close the page, which runs its unload handlers",
    webkit: "needs a hard tab crash (CDP Page.crash); classic WebDriver can only close the window, which runs its unload handlers",
  }),
}, async () => {
  const rng = streamOf("tab killed");
  const count = 10_000;
  const context = await h.browser.newContext();
  try {
    const seeder = await devicePage(context, h.server.url);
    const user = unique("user");
    await openInstance(seeder, "S", { name: unique("seed"), user });
    await withCd(seeder, "S", async (cd, [p, n]) => {
      const kv = cd.plugin(p);
      await kv.setMany(Array.from({ length: n }, (_, i) => [`r${i}`, { i, pad: "x".repeat(64) }]));
      await kv.flush();
    }, [PLUGIN, count]);
    const seeded = await sync(seeder, "S");
    assert.equal(seeded.result.shipped, count);
    await seeder.close();
    // How long a whole pull takes here, so the kills land inside one.
    const timing = await devicePage(context, h.server.url);
    await openInstance(timing, "T", { name: unique("timing"), user });
    const started = Date.now();
    await sync(timing, "T");
    const pullMs = Date.now() - started;
    await timing.close();
    let interrupted = 0;
    const resumes = [];
    for (let i = 0; i < ITERATIONS; i++) {
      const what = `tab killed, iteration ${i} (seed ${SEED})`;
      const name = unique("killed");
      const victim = await devicePage(context, h.server.url);
      await openInstance(victim, "V", { name, user });
      await victim.evaluate(() => {
        window.__pulled = false;
        window.__sync.cds.V.sync().then(() => (window.__pulled = true));
      });
      await new Promise((r) => setTimeout(r, rng.int(pullMs)));
      if (!(await victim.evaluate(() => window.__pulled))) interrupted += 1;
      const cdp = await context.newCDPSession(victim);
      const sent = cdp.send("Page.crash").catch(() => {});
      await Promise.race([sent, new Promise((r) => setTimeout(r, 1000))]);
      await victim.close().catch(() => {});
      // The same device again: its database, a new tab. It resumes after the last page it
      // committed: the records it holds are never sent again (resumable syncs, issue 16).
      const again = await devicePage(context, h.server.url);
      const { nodeId } = await openInstance(again, "V", { name, user });
      const held = await withCd(again, "V", (cd, p) => cd.plugin(p).keys({ limit: 100_000 }).length, PLUGIN);
      const recorder = await recordExchanges(context, [nodeId]);
      const resumed = await sync(again, "V");
      await recorder.stop();
      const received = recorder.log.reduce((n, e) => n + (e.reply?.records?.length ?? 0), 0);
      assert.equal(received, count - held, `${what}: records sent again after ${held} committed`);
      assert.equal(resumed.result.rounds, recorder.log.length, what);
      resumes.push({ held, pages: recorder.log.length, received });
      const check = await withCd(again, "V", (cd, p) => {
        const kv = cd.plugin(p);
        const keys = kv.keys({ limit: 100_000 });
        let bad = 0;
        for (const k of keys) if (kv.get(k).i !== Number(k.slice(1))) bad += 1;
        return { keys: keys.length, bad };
      }, PLUGIN);
      assert.deepEqual(check, { keys: count, bad: 0 }, what);
      await again.close();
    }
    console.log(`faults: tab killed ${ITERATIONS} times during a ${count}-record pull of ${pullMs} ms; ${interrupted} kills landed before the pull finished`);
    const full = Math.ceil(count / 1000);
    const resumedMid = resumes.filter((r) => r.held > 0 && r.held < count);
    console.log(`faults: resumed pulls (records held before / pages fetched after, of ${full} for a whole pull): ${resumes.map((r) => `${r.held}/${r.pages}`).join(" ")}; records sent again: 0 in every one; ${resumedMid.length} resumed mid-pull`);
    assert.ok(interrupted >= ITERATIONS / 2, `only ${interrupted} of ${ITERATIONS} kills landed inside the pull`);
  } finally {
    await context.close();
  }
});

// Pipelined pulls (src/sync/round.rs, core::pipeline): while page 2's batch commits, page 3's
// request is already out. Page 2's IndexedDB transaction aborts: the sync fails typed, page 1
// stays, nothing of page 2 or 3 is kept and no watermark moved past page 1 (the next sync is
// sent exactly the records not held, and converges).
test("fault: a commit failing mid-pipeline advances nothing past what committed", { timeout: 300_000 }, async () => {
  const count = 3_000;
  const page = 1_000;
  const context = await h.browser.newContext();
  try {
    const tab = await devicePage(context, h.server.url);
    const user = unique("user");
    await openInstance(tab, "S", { name: unique("seed"), user });
    await withCd(tab, "S", async (cd, [p, n]) => {
      const kv = cd.plugin(p);
      await kv.setMany(Array.from({ length: n }, (_, i) => [`r${i}`, { i }]));
      await kv.flush();
    }, [PLUGIN, count]);
    assert.equal((await sync(tab, "S")).result.shipped, count);
    const name = unique("pipe");
    const { nodeId } = await openInstance(tab, "P", { name, user, sync: { retries: 1 } });
    // The second transaction that puts into P's database (page 2's commit) aborts.
    await tab.evaluate((db) => {
      const put = IDBObjectStore.prototype.put;
      let last = null;
      let seen = 0;
      IDBObjectStore.prototype.put = function (...args) {
        const request = put.apply(this, args);
        if (this.transaction.db.name === db && this.transaction !== last) {
          last = this.transaction;
          seen += 1;
          if (seen === 2) {
            IDBObjectStore.prototype.put = put;
            this.transaction.abort();
          }
        }
        return request;
      };
      window.__restorePut = () => (IDBObjectStore.prototype.put = put);
    }, name);
    const failing = await recordExchanges(context, [nodeId]);
    let error;
    try {
      await sync(tab, "P", { limit: page });
    } catch (e) {
      error = e;
    } finally {
      await tab.evaluate(() => window.__restorePut());
      await failing.stop();
    }
    assert.ok(error instanceof PageError && typeof error.code === "string" && error.code.length > 0, `untyped or no failure: ${error}`);
    // Page 3 was asked for while page 2 committed: the pipeline was running when the commit failed.
    assert.equal(failing.log.length, 3, `requests during the failing sync: ${failing.log.length}`);
    assert.deepEqual(failing.log[2].request.push, [], "only pure pulls go out ahead");
    const held = await withCd(tab, "P", (cd, p) => cd.plugin(p).keys({ limit: 100_000 }).length, PLUGIN);
    assert.equal(held, page, "page 1 stays, nothing of page 2 or 3");
    // Nothing advanced past page 1: the next sync is sent exactly the records not held.
    const again = await recordExchanges(context, [nodeId]);
    const resumed = (await sync(tab, "P", { limit: page })).result;
    await again.stop();
    const received = again.log.reduce((n, e) => n + (e.reply?.records?.length ?? 0), 0);
    assert.equal(received, count - held, "records sent again or skipped");
    assert.equal(resumed.applied, count - held);
    assert.equal(resumed.rounds, again.log.length, "one request per round: every request sent ahead was used");
    const check = await withCd(tab, "P", (cd, p) => {
      const kv = cd.plugin(p);
      const keys = kv.keys({ limit: 100_000 });
      return { keys: keys.length, bad: keys.filter((k) => kv.get(k).i !== Number(k.slice(1))).length };
    }, PLUGIN);
    assert.deepEqual(check, { keys: count, bad: 0 });
  } finally {
    await context.close();
  }
});
