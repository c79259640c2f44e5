// Sync end to end: ClientData instances in Debian's Chromium against the real reference server.
// Two "devices" are two databases (different names) of the same user that name one server dataset
// (sync.dataset "devices", set by openInstance); each test has its own user and database names, so
// tests never see each other's data on the shared server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, freshDatabase } from "../lib/server.mjs";
import { harness } from "../lib/harness.mjs";
import {
  unique, freePort, devicePage, openInstance, withCd, sync, exchange, set, del, get, dump, events,
  tokenCalls, recordExchanges, interceptNode, tamperNode, hlc, hlcWall, poll,
} from "../lib/sync.mjs";

const h = harness();
const { scenario } = h;

/** Starts the server again on the same address and database (the port may linger briefly). */
async function restart(listen, database) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await startServer({ listen, database });
    } catch (e) {
      if (attempt >= 20) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}


/** A page with instances `ids` (default A and B), each its own database, all of one user. */
async function devices(context, ids = ["A", "B"], specs = {}) {
  const page = await devicePage(context, h.server.url);
  const user = unique("user");
  const nodes = {};
  for (const id of ids) {
    const meta = await openInstance(page, id, { name: unique(`db${id}`), user, ...(specs[id] ?? {}) });
    nodes[id] = meta.nodeId;
  }
  return { page, user, nodes };
}

scenario("two devices converge after writes, overwrites and deletes on both sides", async (context) => {
  const { page } = await devices(context);
  const plugins = ["notes", "todo"];

  await set(page, "A", "notes", "a1", { n: 1 });
  await set(page, "A", "notes", "a2", "two");
  await set(page, "A", "notes", "shared", "from A");
  await set(page, "A", "todo", "t1", [1, 2]);
  await withCd(page, "A", (cd) => cd.plugin("notes").set("bin", new Uint8Array([1, 2, 255])));
  await set(page, "B", "notes", "b1", true);
  await set(page, "B", "notes", "b2", null);
  await set(page, "B", "todo", "t2", { x: "y" });

  const a1 = (await sync(page, "A")).result;
  assert.deepEqual([a1.rounds, a1.applied, a1.shipped], [1, 0, 5], "A's first sync: rounds, applied, shipped");
  const b1 = (await sync(page, "B")).result;
  assert.equal(b1.shipped, 3);
  assert.equal(b1.applied, 5);
  const a2 = (await sync(page, "A")).result;
  assert.equal(a2.shipped, 0);
  assert.equal(a2.applied, 3);

  const first = {
    notes: { a1: { n: 1 }, a2: "two", b1: true, b2: null, bin: { bytes: [1, 2, 255] }, shared: "from A" },
    todo: { t1: [1, 2], t2: { x: "y" } },
  };
  const bytesAsArrays = (d) =>
    withCd(page, d, (cd, plugins) => {
      const out = {};
      for (const p of plugins) {
        const kv = cd.plugin(p);
        out[p] = {};
        for (const k of kv.keys()) {
          const v = kv.get(k);
          out[p][k] = v instanceof Uint8Array ? { bytes: Array.from(v) } : v;
        }
      }
      return out;
    }, plugins);
  assert.deepEqual(await bytesAsArrays("A"), first);
  assert.deepEqual(await bytesAsArrays("B"), first);

  // Second phase: overwrites and deletes on both sides, each of the other's keys too.
  await set(page, "A", "notes", "a1", { n: 2 });
  await del(page, "A", "notes", "b1");
  await del(page, "A", "todo", "t2");
  await set(page, "B", "notes", "b2", "B2 new");
  await del(page, "B", "notes", "a2");
  await set(page, "B", "notes", "shared", "from B");
  await set(page, "B", "todo", "t1", [3]);
  await del(page, "B", "notes", "bin");

  assert.equal((await sync(page, "A")).result.shipped, 3);
  const b2 = (await sync(page, "B")).result;
  assert.equal(b2.shipped, 5);
  assert.equal(b2.applied, 3);
  assert.equal((await sync(page, "A")).result.applied, 5);

  const second = { notes: { a1: { n: 2 }, b2: "B2 new", shared: "from B" }, todo: { t1: [3] } };
  assert.deepEqual(await dump(page, "A", plugins), second);
  assert.deepEqual(await dump(page, "B", plugins), second);
  for (const d of ["A", "B"]) {
    for (const [p, k] of [["notes", "a2"], ["notes", "b1"], ["notes", "bin"], ["todo", "t2"]]) {
      assert.equal(await get(page, d, p, k), undefined, `${d}: ${p}/${k} was deleted`);
      assert.equal(await withCd(page, d, (cd, [p, k]) => cd.plugin(p).has(k), [p, k]), false, `${d}: has(${p}/${k})`);
    }
  }

  // A deleted key written again comes back on the other device.
  await set(page, "B", "notes", "b1", "back");
  await sync(page, "B");
  await sync(page, "A");
  assert.equal(await get(page, "A", "notes", "b1"), "back");
});

scenario("concurrent writes to one key end with the same winner on both devices, the greater HLC", async (context) => {
  const { page, nodes } = await devices(context);
  const log = await recordExchanges(context, [nodes.A, nodes.B]);

  // d: known to both first, then deleted on A and overwritten on B concurrently.
  await set(page, "A", "notes", "d", "original");
  await sync(page, "A");
  await sync(page, "B");
  assert.equal(await get(page, "B", "notes", "d"), "original");

  await set(page, "A", "notes", "k", "A-value");
  await del(page, "A", "notes", "d");
  await set(page, "B", "notes", "k", "B-value");
  await set(page, "B", "notes", "d", "B-rewrite");

  const before = log.log.length;
  await sync(page, "A");
  const onB = (await sync(page, "B")).result;
  const onA = (await sync(page, "A")).result;

  const pushed = (node, key) => {
    const stamps = log.log.slice(before).filter((e) => e.node === node).flatMap((e) => e.request.push ?? []).filter((r) => r.key === key);
    assert.equal(stamps.length, 1, `node ${node} pushed ${key} once`);
    return stamps[0];
  };
  const winners = {};
  for (const key of ["k", "d"]) {
    const a = pushed(nodes.A, key);
    const b = pushed(nodes.B, key);
    assert.notEqual(a.hlc, b.hlc);
    const win = a.hlc > b.hlc ? a : b;
    winners[key] = win.value === undefined ? undefined : JSON.parse(win.value.json);
  }
  for (const key of ["k", "d"]) {
    const va = await get(page, "A", "notes", key);
    const vb = await get(page, "B", "notes", key);
    assert.deepEqual(va, vb, `both devices agree on ${key}`);
    assert.deepEqual(va, winners[key], `${key} holds the write with the greater HLC`);
  }
  assert.ok(["A-value", "B-value"].includes(await get(page, "A", "notes", "k")));
  // Exactly one side had to take the other's version of each key.
  assert.equal(onA.applied + onB.applied, 2);
  await log.stop();
});

scenario("paging: 50 records arrive in pages of 3, over several rounds, with progress", async (context) => {
  const { page, nodes } = await devices(context, ["A", "B", "C", "D"], { B: { sync: { pageLimit: 3 } } });
  await withCd(page, "A", (cd) => {
    const kv = cd.plugin("p");
    for (let i = 0; i < 50; i++) kv.set(`k${String(i).padStart(2, "0")}`, { i });
  });
  const pushed = (await sync(page, "A")).result;
  assert.equal(pushed.shipped, 50);
  assert.equal(pushed.applied, 0);

  const expected = { p: Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${String(i).padStart(2, "0")}`, { i }])) };
  const log = await recordExchanges(context, [nodes.B, nodes.C]);
  const checkPaged = async (id, opts) => {
    const { result, progress } = await sync(page, id, opts);
    assert.equal(result.applied, 50, `${id} applied`);
    assert.equal(result.shipped, 0, `${id} shipped`);
    assert.ok(result.rounds >= 17, `${id}: 50 records in pages of 3 take at least 17 rounds, took ${result.rounds}`);
    assert.equal(progress.length, result.rounds, `${id}: onProgress once per round`);
    progress.forEach((p, i) => {
      assert.equal(p.rounds, i + 1, `${id}: progress ${i} rounds`);
      assert.equal(p.hasMore, i < progress.length - 1, `${id}: progress ${i} hasMore`);
      assert.ok(i === 0 || p.applied >= progress[i - 1].applied, `${id}: applied only grows`);
      assert.equal(typeof p.shipped, "number");
    });
    assert.equal(progress.at(-1).applied, 50, `${id}: the last progress counts every applied record`);
    const mine = log.log.filter((e) => e.node === nodes[id]);
    assert.equal(mine.length, result.rounds, `${id}: one request per round`);
    for (const e of mine) {
      assert.equal(e.request.limit, 3, `${id}: requested page size`);
      assert.ok(e.reply.records.length <= 3, `${id}: reply within the page`);
    }
    assert.equal(mine.reduce((n, e) => n + e.reply.records.length, 0), 50);
    assert.deepEqual(await dump(page, id, ["p"]), expected);
  };
  await checkPaged("B", {}); // sync: { pageLimit: 3 } at open
  await checkPaged("C", { limit: 3 }); // per call
  await log.stop();

  // One round of a page: exactly the page, and more to come.
  const round = await exchange(page, "D", { limit: 3 });
  assert.deepEqual([round.applied, round.shipped, round.hasMore], [3, 0, true], "one round of limit 3: applied, shipped, hasMore");
});

scenario("paging pushes: a device with pageLimit 3 ships all its 10 records over several rounds", async (context) => {
  const { page, nodes } = await devices(context, ["A", "B"], { A: { sync: { pageLimit: 3 } } });
  await withCd(page, "A", (cd) => {
    for (let i = 0; i < 10; i++) cd.plugin("q").set(`k${i}`, i);
  });
  const log = await recordExchanges(context, [nodes.A]);
  const { result } = await sync(page, "A");
  assert.equal(result.shipped, 10);
  assert.ok(result.rounds >= 4, `10 records in pushes of 3 take at least 4 rounds, took ${result.rounds}`);
  for (const e of log.log) assert.ok((e.request.push ?? []).length <= 3, "a push within the page");
  await log.stop();
  assert.equal((await sync(page, "B")).result.applied, 10);
  assert.deepEqual(await dump(page, "B", ["q"]), { q: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, i])) });
});

scenario("scoped sync moves only the plugins in scope; a later full sync moves the rest", async (context) => {
  const { page, nodes } = await devices(context);
  const log = await recordExchanges(context, [nodes.A, nodes.B]);
  await set(page, "A", "a", "x", 1);
  await set(page, "A", "b", "y", 2);
  assert.equal((await sync(page, "A")).result.shipped, 2);

  // Pull scoped.
  assert.equal((await sync(page, "B", { plugins: ["a"] })).result.applied, 1);
  assert.equal(await get(page, "B", "a", "x"), 1);
  assert.equal(await get(page, "B", "b", "y"), undefined, "plugin b is outside the scope");
  const scoped = log.log.filter((e) => e.node === nodes.B);
  assert.ok(scoped.length >= 1);
  for (const e of scoped) {
    assert.deepEqual(e.request.plugins, ["a"]);
    for (const r of e.reply.records) assert.equal(r.plugin, "a");
  }
  assert.equal((await sync(page, "B")).result.applied, 1);
  assert.equal(await get(page, "B", "b", "y"), 2);

  // Push scoped.
  await set(page, "A", "a", "x2", 3);
  await set(page, "A", "b", "y2", 4);
  const from = log.log.length;
  assert.equal((await sync(page, "A", { plugins: ["a"] })).result.shipped, 1);
  for (const e of log.log.slice(from).filter((e) => e.node === nodes.A)) {
    for (const r of e.request.push ?? []) assert.equal(r.plugin, "a", "a scoped round pushes only plugin a");
  }
  assert.equal((await sync(page, "B")).result.applied, 1);
  assert.equal(await get(page, "B", "a", "x2"), 3);
  assert.equal(await get(page, "B", "b", "y2"), undefined, "b/y2 was not pushed yet");
  assert.equal((await sync(page, "A")).result.shipped, 1);
  assert.equal((await sync(page, "B")).result.applied, 1);
  assert.equal(await get(page, "B", "b", "y2"), 4);
  await log.stop();
});

scenario("an aborted round applies nothing; the next sync receives the record", async (context) => {
  const { page, nodes } = await devices(context);
  await set(page, "A", "notes", "k", "from A");
  await sync(page, "A");

  // Aborted before the call.
  for (const method of ["exchange", "sync"]) {
    await assert.rejects(
      withCd(page, "B", (cd, method) => {
        const controller = new AbortController();
        controller.abort();
        return cd[method]({ signal: controller.signal });
      }, method),
      { name: "AbortError", code: "aborted" },
      `${method} with an aborted signal`,
    );
  }
  assert.equal(await get(page, "B", "notes", "k"), undefined);

  // Aborted while the request is in flight: the route holds it until the abort.
  let arrived;
  const hit = new Promise((r) => (arrived = r));
  let release;
  const gate = new Promise((r) => (release = r));
  const held = await interceptNode(context, nodes.B, async (route) => {
    arrived();
    await gate;
    await route.continue().catch(() => {}); // the browser cancelled it
  });
  await page.evaluate(() => {
    const state = window.__sync;
    state.controllers.B = new AbortController();
    state.pending.B = state.cds.B.exchange({ signal: state.controllers.B.signal }).then(
      (value) => ({ ok: true, value }),
      (e) => ({ ok: false, error: { name: e?.name, code: e?.code, message: String(e?.message) } }),
    );
  });
  await hit;
  await page.evaluate(() => window.__sync.controllers.B.abort());
  const outcome = await page.evaluate(() => window.__sync.pending.B);
  release();
  await held.stop();
  assert.equal(outcome.ok, false, `the aborted exchange resolved ${JSON.stringify(outcome.value)}`);
  assert.equal(outcome.error.name, "AbortError");
  assert.equal(outcome.error.code, "aborted");
  assert.equal(await get(page, "B", "notes", "k"), undefined, "nothing applied by the aborted round");

  const next = (await sync(page, "B")).result;
  assert.equal(next.applied, 1);
  assert.equal(await get(page, "B", "notes", "k"), "from A");
});

test("server stopped: a typed network error, no local write lost; restarted, the next sync delivers", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "clientdata-e2e-restart-"));
  const database = freshDatabase(dir, "restart.sqlite");
  const port = await freePort();
  const listen = `127.0.0.1:${port}`;
  let own = await startServer({ listen, database });
  const context = await h.browser.newContext();
  try {
    // The page is served by this server and stays loaded while it is down.
    const page = await devicePage(context, own.url);
    const user = unique("user");
    await openInstance(page, "A", { name: unique("dbA"), user, sync: { retries: 1 } });
    await openInstance(page, "B", { name: unique("dbB"), user, sync: { retries: 1 } });
    await set(page, "A", "notes", "before", "online");
    assert.equal((await sync(page, "A")).result.shipped, 1);

    await own.stop();
    await set(page, "A", "notes", "offline", { written: "while the server was down" });
    await assert.rejects(sync(page, "A"), { name: "SyncNetworkError", code: "network" });
    await assert.rejects(exchange(page, "B"), { name: "SyncNetworkError", code: "network" });
    assert.equal(await get(page, "A", "notes", "before"), "online");
    assert.deepEqual(await get(page, "A", "notes", "offline"), { written: "while the server was down" });

    own = await restart(listen, database);
    assert.equal(own.url, `http://${listen}`);
    const again = (await sync(page, "A")).result;
    assert.equal(again.shipped, 1, "only the offline write is pushed: the server kept the rest");
    const b = (await sync(page, "B")).result;
    assert.equal(b.applied, 2);
    assert.deepEqual(await dump(page, "B", ["notes"]), { notes: { before: "online", offline: { written: "while the server was down" } } });
  } finally {
    await context.close();
    await own.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

scenario("401: the token provider is asked once more; a refreshed token succeeds, a bad one fails typed", async (context) => {
  const { page, user } = await devices(context, ["A"]);
  await set(page, "A", "notes", "k", "v");
  await sync(page, "A");

  const meta = {};
  meta.B = await openInstance(page, "B", { name: unique("dbB"), user, tokens: ["bad", `dev-token-${user}`], syncToken: true });
  meta.C = await openInstance(page, "C", { name: unique("dbC"), user, tokens: ["nope"] });
  const log = await recordExchanges(context, [meta.B.nodeId, meta.C.nodeId]);

  const b = (await sync(page, "B")).result;
  assert.equal(b.applied, 1);
  assert.equal(await get(page, "B", "notes", "k"), "v");
  const bLog = log.log.filter((e) => e.node === meta.B.nodeId);
  assert.equal(bLog[0].authorization, "Bearer bad");
  assert.equal(bLog[0].status, 401);
  assert.equal(bLog[0].reply.code, "unauthorized");
  assert.equal(bLog[1].authorization, `Bearer dev-token-${user}`);
  assert.equal(bLog[1].status, 200);
  assert.ok((await tokenCalls(page, "B")) >= 2);

  await assert.rejects(exchange(page, "C"), (e) => {
    assert.equal(e.name, "SyncHttpError");
    assert.equal(e.code, "unauthorized");
    assert.equal(e.status, 401);
    assert.equal(e.isError, true);
    return true;
  });
  assert.equal(await tokenCalls(page, "C"), 2, "asked once, then once more after the 401");
  assert.equal(log.log.filter((e) => e.node === meta.C.nodeId).length, 2, "two requests, no retries of a 401");
  assert.equal(await get(page, "C", "notes", "k"), undefined);
  await log.stop();

  // Another user's token sees none of this user's records.
  await openInstance(page, "D", { name: unique("dbD"), user: unique("other") });
  assert.equal((await sync(page, "D")).result.applied, 0);
  assert.equal(await get(page, "D", "notes", "k"), undefined);
});

scenario("retries: 5xx and network failures are retried with backoff, 4xx are not; a stalled request times out", async (context) => {
  const { page, nodes } = await devices(context, ["A", "B", "C", "D", "E", "F"], {
    A: { sync: { retries: 1 } },
    D: { sync: { retries: 1 } },
    F: { sync: { timeoutMs: 300, retries: 0 } },
  });
  const fail500 = (route) => route.fulfill({ status: 500, contentType: "application/json", body: JSON.stringify({ code: "internal", message: "injected" }) });

  const a = await interceptNode(context, nodes.A, fail500);
  await assert.rejects(exchange(page, "A"), { name: "SyncHttpError", code: "internal", status: 500 });
  assert.equal(a.calls.length, 2, "retries: 1 means two attempts");
  await a.stop();

  const b = await interceptNode(context, nodes.B, fail500);
  await assert.rejects(exchange(page, "B"), { name: "SyncHttpError", code: "internal", status: 500 });
  assert.equal(b.calls.length, 3, "default retries: 2 means three attempts");
  await b.stop();

  await set(page, "C", "notes", "c", 1);
  let first = true;
  const c = await interceptNode(context, nodes.C, (route) => {
    if (first) {
      first = false;
      return fail500(route);
    }
    return route.continue();
  });
  assert.equal((await sync(page, "C")).result.shipped, 1, "a 500 once, then the retry succeeds");
  assert.equal(c.calls.length, 2);
  await c.stop();

  const d = await interceptNode(context, nodes.D, (route) => route.abort("connectionrefused"));
  await assert.rejects(exchange(page, "D"), { name: "SyncNetworkError", code: "network" });
  assert.equal(d.calls.length, 2, "a network failure is retried");
  await d.stop();

  const e = await interceptNode(context, nodes.E, (route) => route.fulfill({ status: 400, contentType: "application/json", body: JSON.stringify({ code: "invalid_request", message: "injected" }) }));
  await assert.rejects(exchange(page, "E"), { name: "SyncHttpError", code: "invalid_request", status: 400 });
  assert.equal(e.calls.length, 1, "a 4xx is not retried");
  await e.stop();

  const stalled = [];
  const f = await interceptNode(context, nodes.F, (route) => void stalled.push(route));
  const started = Date.now();
  await assert.rejects(exchange(page, "F"), { name: "SyncTimeoutError", code: "timeout" });
  const took = Date.now() - started;
  assert.ok(took < 5000, `timeoutMs 300 took ${took} ms`);
  await f.stop();
  for (const route of stalled) await route.abort().catch(() => {});
});

// --- tampered replies -------------------------------------------------------------------------

const FAKE_NODE = "0000000000f00d01";

/** A wrote t/real and synced; B's next reply goes through `modify`; the round must fail with
 * `expected`, apply nothing, and the next untampered sync must work. Returns the setup. */
async function tampered(context, modify, expected, { key, specs } = {}) {
  const setup = await devices(context, ["A", "B"], specs);
  const { page, nodes } = setup;
  await set(page, "A", "t", "real", "r");
  await sync(page, "A");
  const tamper = await tamperNode(context, nodes.B, (json, request) => modify(json, request, nodes));
  await assert.rejects(exchange(page, "B"), (e) => {
    assert.equal(e.name, expected.name, `error name (message: ${e.message})`);
    assert.equal(e.code, expected.code);
    assert.equal(e.isError, true);
    return true;
  });
  assert.ok(tamper.calls.length >= 1, "the reply was tampered with");
  await tamper.stop();
  assert.equal(await get(page, "B", "t", "real"), undefined, "nothing of the failed round applied");
  if (key) assert.equal(await get(page, "B", "t", key), undefined, `t/${key} not applied`);
  const next = (await sync(page, "B")).result;
  assert.equal(next.applied, 1, "the next round applies the real record");
  assert.equal(await get(page, "B", "t", "real"), "r");
  if (key) assert.equal(await get(page, "B", "t", key), undefined);
  return setup;
}

function addRecord(json, record) {
  json.records.push(record);
  json.coverage[record.plugin] ??= {};
  const node = record.hlc.slice(-16);
  const cur = json.coverage[record.plugin][node];
  if (!cur || cur < record.hlc) json.coverage[record.plugin][node] = record.hlc;
  return json;
}

scenario("a reply with a record an hour in the future: ClockDriftError, nothing applied, the clock did not jump", async (context) => {
  const future = hlc(Date.now() + 3_600_000, 0, FAKE_NODE);
  const { page, nodes } = await tampered(
    context,
    (json) => addRecord(json, { plugin: "t", key: "future", hlc: future, value: { json: '"f"' } }),
    { name: "ClockDriftError", code: "clock_drift" },
    { key: "future" },
  );

  // B's clock: its next request claims its own position in `seen`, and its next write's stamp.
  const log = await recordExchanges(context, [nodes.A, nodes.B]);
  await set(page, "B", "t", "after", "B");
  await new Promise((r) => setTimeout(r, 20));
  await set(page, "A", "t", "after", "A"); // later in real time: wins unless B's clock jumped
  await sync(page, "B");
  await sync(page, "A");
  await sync(page, "B");
  const now = Date.now();
  const bRequests = log.log.filter((e) => e.node === nodes.B);
  const bPush = bRequests.flatMap((e) => e.request.push ?? []).find((r) => r.key === "after");
  assert.ok(bPush, "B pushed t/after");
  assert.ok(hlcWall(bPush.hlc) <= now + 1000, `B's write stamped ${bPush.hlc}, ${hlcWall(bPush.hlc) - now} ms ahead`);
  for (const e of bRequests) {
    for (const vector of Object.values(e.request.seen ?? {})) {
      if (vector[nodes.B]) assert.ok(hlcWall(vector[nodes.B]) <= now + 1000, `B claims its clock at ${vector[nodes.B]}`);
    }
  }
  assert.equal(await get(page, "A", "t", "after"), "A");
  assert.equal(await get(page, "B", "t", "after"), "A");
  await log.stop();
});

scenario("a reply whose coverage alone is in the future: ClockDriftError, nothing applied", async (context) => {
  await tampered(
    context,
    (json) => {
      json.coverage.t ??= {};
      json.coverage.t[FAKE_NODE] = hlc(Date.now() + 3_600_000, 0, FAKE_NODE);
      return json;
    },
    { name: "ClockDriftError", code: "clock_drift" },
  );
});

scenario("a reply that echoes our own node: OwnNodeEchoedError, nothing applied", async (context) => {
  await tampered(
    context,
    (json, request) => addRecord(json, { plugin: "t", key: "echo", hlc: hlc(Date.now() + 5, 0, request.node), value: { json: "1" } }),
    { name: "OwnNodeEchoedError", code: "own_node_echoed" },
    { key: "echo" },
  );
});

scenario("a record forged with B's node id through the real server never reaches B: B keeps syncing", async (context) => {
  const { page, user, nodes } = await devices(context);
  await set(page, "B", "notes", "mine", 1);
  await sync(page, "B");
  await set(page, "A", "notes", "theirs", 2);
  await sync(page, "A");
  // Another client of the same user pushes a record stamped with B's node id, above B's clock.
  // Before the server left a requester's own node out of its answers, B refused every reply as
  // own_node_echoed from here on.
  const forged = { plugin: "notes", key: "forged", hlc: hlc(Date.now() + 1000, 0, nodes.B), value: { json: "3" } };
  const res = await fetch(`${h.server.url}/sync/exchange`, {
    method: "POST",
    headers: { authorization: `Bearer dev-token-${user}`, "content-type": "application/json" },
    body: JSON.stringify({ version: 2, node: FAKE_NODE, dataset: "devices", push: [forged], limit: 10 }),
  });
  assert.equal(res.status, 200, await res.text());
  for (let i = 0; i < 3; i++) await sync(page, "B");
  assert.equal(await get(page, "B", "notes", "forged"), undefined, "B never receives its own node's record");
  assert.equal(await get(page, "B", "notes", "theirs"), 2);
  // B's later writes still reach A (its clock moved past the forged stamp via the coverage).
  await set(page, "B", "notes", "after", 4);
  await sync(page, "B");
  await sync(page, "A");
  assert.equal(await get(page, "A", "notes", "after"), 4);
  assert.equal(await get(page, "A", "notes", "forged"), 3, "other devices do receive it");
});

scenario("a reply with a record whose value is not JSON: InvalidJsonError, nothing applied", async (context) => {
  await tampered(
    context,
    (json) => addRecord(json, { plugin: "t", key: "poison", hlc: hlc(Date.now() + 5, 0, FAKE_NODE), value: { json: "{not json" } }),
    { name: "InvalidJsonError", code: "invalid_json" },
    { key: "poison" },
  );
});

scenario("maxDriftMs is honoured: 30 s ahead is refused by a device opened with maxDriftMs 5000", async (context) => {
  await tampered(
    context,
    (json) => addRecord(json, { plugin: "t", key: "ahead", hlc: hlc(Date.now() + 30_000, 0, FAKE_NODE), value: { json: "1" } }),
    { name: "ClockDriftError", code: "clock_drift" },
    { key: "ahead", specs: { B: { maxDriftMs: 5000 } } },
  );
});

scenario("a reply with hasMore and no records: NoProgressError", async (context) => {
  await tampered(
    context,
    (json) => ({ ...json, records: [], hasMore: true }),
    { name: "NoProgressError", code: "no_progress" },
  );
});

scenario("a reply whose coverage is below what it sends: WatermarkRegressionError, nothing applied", async (context) => {
  await tampered(
    context,
    (json) => ({ ...json, coverage: {} }), // the reply still carries A's record
    { name: "WatermarkRegressionError", code: "watermark_regression" },
  );
});

for (const [what, body] of [
  ["malformed JSON", '{"version":2,"records":['],
  ["JSON of the wrong shape", '{"version":2,"records":"nope","coverage":{},"hasMore":false}'],
  ["an HTML page", "<!doctype html><title>proxy error</title>"],
]) {
  scenario(`a reply that is ${what}: InvalidReplyError, nothing applied`, async (context) => {
    await tampered(context, () => body, { name: "InvalidReplyError", code: "invalid_reply" });
  });
}

scenario("a reply of another protocol version: UnsupportedVersionError, nothing applied", async (context) => {
  await tampered(context, (json) => ({ ...json, version: 3 }), { name: "UnsupportedVersionError", code: "unsupported_version" });
});

// --- events, tabs, auto-sync ------------------------------------------------------------------

scenario("events: local-data-synced per round, remote-update-available for the keys that changed", async (context) => {
  const { page } = await devices(context);
  await set(page, "A", "notes", "e1", 1);
  await set(page, "A", "notes", "e2", 2);
  await set(page, "A", "todo", "e3", 3);
  const a = (await sync(page, "A")).result;
  await sync(page, "B");

  // Events may be delivered just after the call resolves: wait for the counts, then check.
  const sum = (list, type, field) => list.filter((e) => e.type === type).reduce((n, e) => n + e.event[field], 0);
  await poll(async () => sum(await events(page, "A"), "local-data-synced", "shipped") >= 3, 2000);
  const aEvents = await events(page, "A");
  const aSynced = aEvents.filter((e) => e.type === "local-data-synced").map((e) => e.event);
  assert.equal(aSynced.length, a.rounds, "one local-data-synced per round");
  assert.equal(sum(aEvents, "local-data-synced", "shipped"), 3);
  assert.equal(aEvents.filter((e) => e.type === "remote-update-available").length, 0, "A received nothing");

  const unionKeys = (list) => {
    const keys = {};
    for (const u of list.filter((e) => e.type === "remote-update-available")) keys[u.event.plugin] = [...(keys[u.event.plugin] ?? []), ...u.event.keys].sort();
    return keys;
  };
  await poll(async () => {
    const list = await events(page, "B");
    return sum(list, "local-data-synced", "applied") >= 3 && Object.values(unionKeys(list)).flat().length >= 3;
  }, 2000);
  const bEvents = await events(page, "B");
  const synced = bEvents.filter((e) => e.type === "local-data-synced").map((e) => e.event);
  assert.ok(synced.length >= 1);
  for (const e of synced) {
    assert.equal(typeof e.applied, "number");
    assert.equal(typeof e.shipped, "number");
    assert.equal(typeof e.hasMore, "boolean");
    assert.ok(Array.isArray(e.changes));
    for (const c of e.changes) {
      assert.equal(typeof c.plugin, "string");
      assert.ok(Array.isArray(c.keys));
    }
  }
  assert.equal(sum(bEvents, "local-data-synced", "applied"), 3);
  const updates = bEvents.filter((e) => e.type === "remote-update-available").map((e) => e.event);
  for (const u of updates) assert.equal(u.fromThisInstance, true, `B applied it itself: ${JSON.stringify(u)}`);
  assert.deepEqual(unionKeys(bEvents), { notes: ["e1", "e2"], todo: ["e3"] });

  // A round that changes nothing locally announces no remote update.
  const count = updates.length;
  await sync(page, "B");
  await new Promise((r) => setTimeout(r, 300));
  const later = (await events(page, "B")).filter((e) => e.type === "remote-update-available");
  assert.equal(later.length, count);
});

scenario("another tab of the synced database sees the pulled values and hears the round with fromThisInstance: false", async (context) => {
  const one = await devicePage(context, h.server.url);
  const two = await devicePage(context, h.server.url);
  const user = unique("user");
  const name = unique("dbB");
  await openInstance(one, "A", { name: unique("dbA"), user });
  await openInstance(one, "B", { name, user });
  await openInstance(two, "B", { name, user });

  await set(one, "A", "notes", "x", "from A");
  await sync(one, "A");
  assert.equal((await sync(one, "B")).result.applied, 1);
  assert.equal(await get(one, "B", "notes", "x"), "from A");
  assert.equal(await poll(() => get(two, "B", "notes", "x"), 3000), "from A");
  const heard = await poll(async () => {
    const list = await events(two, "B");
    const update = list.find((e) => e.type === "remote-update-available");
    const synced = list.find((e) => e.type === "local-data-synced");
    return update && synced ? { update: update.event, synced: synced.event } : null;
  }, 3000);
  assert.ok(heard, `the other tab heard remote-update-available and local-data-synced: ${JSON.stringify(await events(two, "B"))}`);
  assert.equal(heard.update.plugin, "notes");
  assert.deepEqual(heard.update.keys, ["x"]);
  assert.equal(heard.update.fromThisInstance, false);
  assert.equal(heard.synced.applied, 1);
  assert.equal(heard.synced.fromThisInstance, false);
  const mine = (await events(one, "B")).find((e) => e.type === "local-data-synced");
  assert.equal(mine?.event.fromThisInstance, true);
});

scenario("autoSync leadership: one leader per database across tabs; it passes on when the leader closes", async (context) => {
  const one = await devicePage(context, h.server.url);
  const two = await devicePage(context, h.server.url);
  const user = unique("user");
  const name = unique("dbL");
  const auto = { autoSync: { intervalMs: 600_000 } };
  await openInstance(one, "L", { name, user, ...auto });
  await openInstance(two, "L", { name, user, ...auto });
  await openInstance(one, "M", { name: unique("dbM"), user }); // no autoSync: never leader
  const leaderOf = (page) => withCd(page, "L", (cd) => cd.metadata().leader);
  const leaders = await poll(async () => {
    const l = [await leaderOf(one), await leaderOf(two)];
    return l.filter(Boolean).length === 1 ? l : null;
  }, 5000);
  assert.ok(leaders, `exactly one of the two tabs of one database leads: ${JSON.stringify([await leaderOf(one), await leaderOf(two)])}`);
  assert.equal(await withCd(one, "M", (cd) => cd.metadata().leader), false);
  const [leader, follower] = leaders[0] ? [one, two] : [two, one];
  await withCd(leader, "L", (cd) => cd.close());
  assert.equal(await poll(() => leaderOf(follower), 5000), true, "the other tab took over");
});

scenario("autoSync: a write is pushed after the debounce and the other device pulls it on its interval", async (context) => {
  // Nobody listens to local-change-recorded here: auto-sync must not depend on listeners.
  const { page, nodes } = await devices(context, ["A", "B"], {
    A: { autoSync: { intervalMs: 600_000, debounceMs: 50 } },
    B: { autoSync: { intervalMs: 250 } },
  });
  const log = await recordExchanges(context, [nodes.A]);
  await set(page, "A", "notes", "auto", 1);
  const pushed = await poll(() => log.log.some((e) => (e.request.push ?? []).some((r) => r.key === "auto")), 5000);
  assert.ok(pushed, `A's auto-sync shipped the write debounceMs after it (A's requests since: ${log.log.length})`);
  assert.equal(await poll(() => get(page, "B", "notes", "auto"), 10_000), 1);
  await set(page, "A", "notes", "auto", 2);
  assert.equal(await poll(async () => (await get(page, "B", "notes", "auto")) === 2, 10_000), true);
  await log.stop();
});

scenario("an abort between rounds keeps the rounds already committed; the next sync resumes", async (context) => {
  const { page } = await devices(context, ["A", "B"], { B: { sync: { pageLimit: 3 } } });
  await withCd(page, "A", (cd) => {
    for (let i = 0; i < 20; i++) cd.plugin("p").set(`k${String(i).padStart(2, "0")}`, i);
  });
  await sync(page, "A");
  const aborted = await withCd(page, "B", async (cd) => {
    const controller = new AbortController();
    const progress = [];
    try {
      await cd.sync({ signal: controller.signal, onProgress: (p) => { progress.push(p.rounds); if (p.rounds === 2) controller.abort(); } });
      return { resolved: true, progress };
    } catch (e) {
      return { name: e.name, code: e.code, progress, held: cd.plugin("p").keys().length };
    }
  });
  assert.equal(aborted.name, "AbortError", JSON.stringify(aborted));
  assert.equal(aborted.code, "aborted");
  assert.deepEqual(aborted.progress, [1, 2]);
  assert.equal(aborted.held, 6, "the two committed pages of 3 stay");
  const rest = (await sync(page, "B")).result;
  assert.equal(rest.applied, 14);
  assert.equal((await dump(page, "B", ["p"])).p.k19, 19);
});

scenario("two syncs of one instance at once both succeed and deliver everything once", async (context) => {
  const { page } = await devices(context);
  await withCd(page, "A", (cd) => {
    for (let i = 0; i < 5; i++) cd.plugin("n").set(`k${i}`, i);
  });
  const both = await withCd(page, "A", async (cd) => {
    const r = await Promise.allSettled([cd.sync(), cd.sync(), cd.exchange()]);
    return r.map((x) => (x.status === "fulfilled" ? { ok: true, value: x.value } : { ok: false, name: x.reason?.name, message: String(x.reason?.message) }));
  });
  for (const r of both) assert.equal(r.ok, true, JSON.stringify(r));
  assert.ok(both.reduce((n, r) => n + r.value.shipped, 0) >= 5);
  assert.equal((await sync(page, "A")).result.shipped, 0, "nothing left to ship");
  const pulled = await withCd(page, "B", async (cd) => (await Promise.all([cd.sync(), cd.sync()])).reduce((n, r) => n + r.applied, 0));
  assert.equal(pulled, 5, "each record applied once");
  assert.deepEqual(await dump(page, "B", ["n"]), { n: { k0: 0, k1: 1, k2: 2, k3: 3, k4: 4 } });
});

scenario("awkward keys and values cross intact", async (context) => {
  const { page } = await devices(context);
  const entries = [
    ["__proto__", { polluted: true }],
    ["constructor", "c"],
    ["with/slash", "s"],
    ["..", "dots"],
    ["ключ", "значение"],
    ["😀 emoji", "😀\u2028\u0000 nul in a value"],
    ["k".repeat(1024), "longest key"],
    ["quote\"back\\slash", { nested: { deep: [1, "two", null, false, 3.5, -0.25e-7] } }],
  ];
  for (const [k, v] of entries) await set(page, "A", "weird.plugin_1-x", k, v);
  await sync(page, "A");
  assert.equal((await sync(page, "B")).result.applied, entries.length);
  const got = await withCd(page, "B", (cd, keys) => keys.map((k) => cd.plugin("weird.plugin_1-x").get(k)), entries.map(([k]) => k));
  assert.deepEqual(got, entries.map(([, v]) => v));
  assert.deepEqual(await withCd(page, "B", (cd) => cd.plugin("weird.plugin_1-x").keys().length), entries.length);
});

scenario("large values: four 900 KB values cross in pages cut by the 3 MiB byte budget", async (context) => {
  // Inline values (the lazy threshold at its largest, 1 MiB): the exchange itself carries them,
  // so its byte budget must cut the pages. Values by reference: e2e/tests/hydration.test.mjs.
  const inline = { sync: { dataset: "devices", lazyThreshold: 1 << 20 } };
  const { page, nodes } = await devices(context, ["A", "B"], { A: inline, B: inline });
  await withCd(page, "A", async (cd) => {
    const kv = cd.plugin("big");
    await kv.setMany([0, 1, 2, 3].map((i) => [`v${i}`, String(i).repeat(900_000)]));
    await kv.setAsync("bytes", new Uint8Array(700_000).map((_, i) => i % 251));
  });
  const log = await recordExchanges(context, [nodes.A, nodes.B]);
  const a = (await sync(page, "A")).result;
  assert.equal(a.shipped, 5);
  assert.ok(a.rounds >= 2, `4.3 MB of pushes need at least two rounds, took ${a.rounds}`);
  const b = (await sync(page, "B")).result;
  assert.equal(b.applied, 5);
  assert.ok(b.rounds >= 2, `4.3 MB of replies need at least two pages, took ${b.rounds}`);
  const check = await withCd(page, "B", (cd) => {
    const kv = cd.plugin("big");
    const strings = [0, 1, 2, 3].map((i) => kv.get(`v${i}`) === String(i).repeat(900_000));
    const bytes = kv.get("bytes");
    return { strings, bytes: bytes instanceof Uint8Array && bytes.length === 700_000 && bytes.every((x, i) => x === i % 251) };
  });
  assert.deepEqual(check, { strings: [true, true, true, true], bytes: true });
  for (const e of log.log) assert.equal(e.status, 200, `a request answered ${e.status}: ${JSON.stringify(e.reply)?.slice(0, 200)}`);
  await log.stop();
});

scenario("autoSync failures are reported as sync-failed with the typed error", async (context) => {
  const page = await devicePage(context, h.server.url);
  const port = await freePort();
  await openInstance(page, "X", { name: unique("dbX"), user: unique("user"), server: `http://127.0.0.1:${port}`, autoSync: { intervalMs: 200 }, sync: { retries: 0 } });
  const failed = await poll(async () => (await events(page, "X")).find((e) => e.type === "sync-failed"), 10_000);
  assert.ok(failed, "sync-failed was emitted");
  assert.deepEqual([failed.event.name, failed.event.code, failed.event.isError], ["SyncNetworkError", "network", true]);
});

// --- sync service, verifier, configuration ----------------------------------------------------

scenario("sync service: shapes, counts, markDirty, capabilities, scope by context.models", async (context) => {
  const { page } = await devices(context);
  const shape = await withCd(page, "A", (cd, _, state) => {
    state.svc = cd.createSyncService();
    return Object.fromEntries(["pullChanged", "pushChanged", "markDirty", "capabilities", "hydrateFile"].map((m) => [m, typeof state.svc[m]]));
  });
  assert.deepEqual(shape, { pullChanged: "function", pushChanged: "function", markDirty: "function", capabilities: "function", hydrateFile: "function" });
  await withCd(page, "B", (cd, _, state) => void (state.svcB = cd.createSyncService()));

  const caps = await withCd(page, "A", (_, __, state) => state.svc.capabilities());
  assert.equal(caps.scopedSync, true);
  assert.equal(caps.lazyHydration, true);

  for (const k of ["k1", "k2", "k3"]) await set(page, "A", "notes", k, k.toUpperCase());
  assert.equal(await withCd(page, "A", (_, __, state) => state.svc.pushChanged()), 3);
  assert.equal(await withCd(page, "A", (_, __, state) => state.svc.pushChanged()), 0, "nothing left to push");
  assert.equal(await withCd(page, "B", (_, __, state) => state.svcB.pullChanged()), 3);
  assert.equal(await withCd(page, "B", (_, __, state) => state.svcB.pullChanged()), 0, "nothing left to pull");
  assert.deepEqual(await dump(page, "B", ["notes"]), { notes: { k1: "K1", k2: "K2", k3: "K3" } });

  // markDirty: returns nothing, never throws; the next push re-ships what was marked, and
  // marking twice is marking once.
  const dirty = await withCd(page, "A", (_, __, state) => [state.svc.markDirty(), state.svc.markDirty()].map((r) => r === undefined));
  assert.deepEqual(dirty, [true, true]);
  assert.equal(await withCd(page, "A", (_, __, state) => state.svc.pushChanged()), 3, "markDirty() re-ships the whole store");
  const once = await withCd(page, "A", async (_, __, state) => {
    state.svc.markDirty({ relPath: "notes/k2" });
    return state.svc.pushChanged();
  });
  const twice = await withCd(page, "A", async (_, __, state) => {
    state.svc.markDirty({ relPath: "notes/k2" });
    state.svc.markDirty({ relPath: "notes/k2" });
    return state.svc.pushChanged();
  });
  assert.equal(once, 1, "markDirty({ relPath }) re-ships that key");
  assert.equal(twice, 1, "markDirty is idempotent");
  assert.equal(await withCd(page, "A", (_, __, state) => state.svc.pushChanged()), 0, "nothing marked any more");
  assert.equal(await withCd(page, "B", (_, __, state) => state.svcB.pullChanged()), 0, "re-shipped records change nothing elsewhere");

  // hydrateFile resolves for a stored path.
  assert.equal(await withCd(page, "B", (_, __, state) => state.svcB.hydrateFile("notes/k1")), undefined);

  // Scope through context.models.
  await set(page, "A", "a", "x", 1);
  await set(page, "A", "b", "y", 2);
  assert.equal(await withCd(page, "A", (_, __, state) => state.svc.pushChanged({ context: { models: ["a"] } })), 1);
  assert.equal(await withCd(page, "B", (_, __, state) => state.svcB.pullChanged({ context: { models: ["b"] } })), 0, "b/y was not pushed yet");
  assert.equal(await withCd(page, "B", (_, __, state) => state.svcB.pullChanged({ context: { models: ["a"] } })), 1);
  assert.equal(await get(page, "B", "a", "x"), 1);
  assert.equal(await get(page, "B", "b", "y"), undefined);
  assert.equal(await withCd(page, "A", (_, __, state) => state.svc.pushChanged()), 1);
  assert.equal(await withCd(page, "B", (_, __, state) => state.svcB.pullChanged()), 1);
  assert.equal(await get(page, "B", "b", "y"), 2);

  // An aborted signal.
  await assert.rejects(
    withCd(page, "B", (_, __, state) => {
      const c = new AbortController();
      c.abort();
      return state.svcB.pullChanged({ signal: c.signal });
    }),
    { name: "AbortError", code: "aborted" },
  );
});

scenario("verifier: typed report, healthy against the server, unhealthy and naming it when refused", async (context) => {
  const { page, user } = await devices(context, ["A"]);
  const report = await withCd(page, "A", (cd) => cd.createVerifier().verify());
  assert.equal(typeof report.healthy, "boolean");
  assert.equal(typeof report.message, "string");
  assert.equal(typeof report.latencyMs, "number");
  assert.ok(Number.isFinite(report.latencyMs) && report.latencyMs >= 0, `latencyMs ${report.latencyMs}`);
  assert.equal(typeof report.datastoreType, "string");
  assert.ok(report.datastoreType.length > 0);
  assert.equal(typeof report.details, "object");
  assert.notEqual(report.details, null);
  assert.equal(report.healthy, true, `verify: ${JSON.stringify(report)}`);
  const probe = (p, what) => {
    assert.equal(typeof p?.ok, "boolean", `${what}.ok`);
    assert.ok(Number.isFinite(p.latencyMs) && p.latencyMs >= 0, `${what}.latencyMs`);
  };
  for (const what of ["storage", "localStorage", "webLocks", "quota"]) probe(report.details[what], what);
  const remote = report.details.server;
  probe(remote, "server");
  assert.equal(remote.ok, true);
  assert.ok(remote.url.startsWith(`${h.server.url}/`), `the probe names the server: ${remote.url}`);
  assert.equal(remote.health?.healthy, true, `the server's /health: ${JSON.stringify(remote)}`);
  assert.equal(remote.health.database, process.env.CLIENTDATA_E2E_BACKEND === "postgres" ? "postgres" : "sqlite");
  assert.equal(report.datastoreType, `clientdata-${report.details.engine}`);

  const port = await freePort();
  await openInstance(page, "X", { name: unique("dbX"), user, server: `http://127.0.0.1:${port}` });
  const down = await withCd(page, "X", (cd) => cd.createVerifier().verify());
  assert.equal(down.healthy, false, `verify: ${JSON.stringify(down)}`);
  assert.equal(typeof down.message, "string");
  assert.ok(down.message.includes(`127.0.0.1:${port}`), `the message names the server: ${down.message}`);
  assert.ok(Number.isFinite(down.latencyMs) && down.latencyMs >= 0);
  assert.equal(typeof down.datastoreType, "string");
  assert.equal(down.details.server?.ok, false, `the server probe failed: ${JSON.stringify(down.details)}`);
  assert.equal(typeof down.details.server.error, "string");
  assert.equal(down.details.storage.ok, true, "the local probes still pass");
});

scenario("without a server option, exchange and sync reject with SyncNotConfiguredError", async (context) => {
  const page = await devicePage(context, h.server.url);
  const meta = await openInstance(page, "L", { name: unique("local"), server: null });
  assert.equal(meta.server, null);
  assert.match(meta.nodeId, /^[0-9a-f]{16}$/);
  assert.equal(typeof meta.leader, "boolean");
  await set(page, "L", "notes", "k", 1);
  for (const method of ["exchange", "sync"]) {
    await assert.rejects(withCd(page, "L", (cd, m) => cd[m](), method), { name: "SyncNotConfiguredError", code: "sync_not_configured" }, method);
  }
  assert.equal(await get(page, "L", "notes", "k"), 1);

  const user = unique("user");
  const configured = await openInstance(page, "S", { name: unique("srv"), user });
  assert.equal(configured.server?.replace(/\/$/, ""), h.server.url);

  // A base URL with a trailing slash reaches the same endpoint.
  await set(page, "S", "notes", "k", "via origin");
  await sync(page, "S");
  await openInstance(page, "T", { name: unique("slash"), user, server: `${h.server.url}/` });
  assert.equal((await sync(page, "T")).result.applied, 1);
  assert.equal(await get(page, "T", "notes", "k"), "via origin");
});

scenario("two databases of one user are two datasets on the server: neither pulls the other's records", async (context) => {
  const page = await devicePage(context, h.server.url);
  const user = unique("user");
  const [a, b] = [unique("a"), unique("b")];
  await openInstance(page, "A", { name: a, user, dataset: null });
  await openInstance(page, "B", { name: b, user, dataset: null });
  await set(page, "A", "notes", "k", "from a");
  await set(page, "B", "notes", "k", "from b");
  await set(page, "B", "notes", "only-b", 1);
  assert.equal((await sync(page, "A")).result.shipped, 1);
  assert.equal((await sync(page, "B")).result.shipped, 2);
  const again = [(await sync(page, "A")).result, (await sync(page, "B")).result];
  assert.deepEqual(again.map((r) => r.applied), [0, 0], "nothing crosses between the datasets");
  assert.equal(await get(page, "A", "notes", "k"), "from a");
  assert.equal(await get(page, "A", "notes", "only-b"), undefined);
  assert.equal(await get(page, "B", "notes", "k"), "from b");
  // Another device's database of the same name (here: another local name naming dataset a)
  // pulls a's records and nothing of b's.
  await openInstance(page, "A2", { name: unique("a2"), user, dataset: a });
  assert.equal((await sync(page, "A2")).result.applied, 1);
  assert.deepEqual(await dump(page, "A2", ["notes"]), await dump(page, "A", ["notes"]));
  // A bad dataset name is refused at open.
  for (const dataset of ["", "x".repeat(257), "a\nb", 5]) {
    await assert.rejects(openInstance(page, "bad", { name: unique("bad"), user, dataset }), { name: "InvalidOptionsError", code: "invalid_options" }, JSON.stringify(dataset));
  }
});

scenario("a store wiped behind our back (IndexedDB evicted, localStorage kept; or both, with a device id) is reported by the next sync, which pulls everything again", async (context) => {
  const page = await devicePage(context, h.server.url);
  const user = unique("user");
  const bName = unique("dbB");
  await openInstance(page, "B", { name: bName, user });
  const name = unique("wiped");
  await openInstance(page, "A", { name, user });
  for (const k of ["a1", "a2", "a3"]) await set(page, "A", "notes", k, k);
  await set(page, "B", "notes", "b1", "b1");
  await sync(page, "A");
  await sync(page, "B");
  await sync(page, "A");
  const before = await withCd(page, "A", (cd) => cd.metadata());
  assert.equal(before.wiped, false);
  const held = await dump(page, "A", ["notes"]);
  assert.equal(Object.keys(held.notes).length, 4);
  await withCd(page, "A", (cd) => cd.close());
  // The eviction: the database goes, localStorage (with the epoch's mirror) stays.
  await page.evaluate((n) => new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase(n);
    req.onsuccess = resolve;
    req.onerror = () => reject(req.error);
    req.onblocked = () => reject(new Error("blocked"));
  }), name);
  const again = await devicePage(context, h.server.url);
  await openInstance(again, "A", { name, user });
  const after = await withCd(again, "A", (cd) => {
    window.__wipes = [];
    cd.on("store-wiped", (e) => window.__wipes.push(e));
    return cd.metadata();
  });
  assert.equal(after.wiped, true);
  assert.notEqual(after.storeEpoch, before.storeEpoch);
  const verified = await withCd(again, "A", (cd) => cd.createVerifier().verify());
  assert.deepEqual(verified.details.store, { epoch: after.storeEpoch, wiped: true, previousEpoch: before.storeEpoch });
  const first = (await sync(again, "A")).result;
  assert.equal(first.wiped, true);
  assert.equal(first.applied, 4, "everything the server held came back");
  assert.deepEqual(await again.evaluate(() => window.__wipes), [{ epoch: after.storeEpoch, previousEpoch: before.storeEpoch, applied: 4 }]);
  assert.deepEqual(await dump(again, "A", ["notes"]), held);
  assert.equal((await sync(again, "A")).result.wiped, false, "reported once");
  await withCd(again, "A", (cd) => cd.close());

  // Both gone (Safari's seven-day rule, clear site data): nothing on the device outlives the
  // store. Without a device id it is a new device; the server's copy is whole all the same.
  const wipeBoth = (p) => p.evaluate(async (n) => {
    await new Promise((resolve, reject) => {
      const req = indexedDB.deleteDatabase(n);
      req.onsuccess = resolve;
      req.onerror = () => reject(req.error);
    });
    for (const k of Object.keys(localStorage)) if (k.startsWith(`clientdata:${n}:`)) localStorage.removeItem(k);
  }, name);
  await wipeBoth(again);
  const fresh = await devicePage(context, h.server.url);
  const meta = await openInstance(fresh, "A", { name, user });
  assert.equal(meta.wiped, false);
  const pulled = (await sync(fresh, "A")).result;
  assert.deepEqual([pulled.wiped, pulled.applied], [false, 4]);
  assert.deepEqual(await dump(fresh, "A", ["notes"]), held);
  await withCd(fresh, "A", (cd) => cd.close());

  // With the app's device id (sync.device) the server remembers the store epoch per device and
  // tells the next sync of a replaced store. A device id is checked at open.
  for (const device of ["", "x".repeat(129), "a\nb", 5]) {
    await assert.rejects(openInstance(fresh, "bad", { name: unique("bad"), user, sync: { device } }), { name: "InvalidOptionsError", code: "invalid_options" }, JSON.stringify(device));
  }
  const known = await openInstance(fresh, "A", { name, user, sync: { device: "laptop" } });
  assert.equal((await sync(fresh, "A")).result.wiped, false, "the first epoch the server sees of a device");
  // Another device of the user with its own id (B, synced before without one) sees no wipe.
  await withCd(page, "B", (cd) => cd.close());
  await openInstance(page, "B", { name: bName, user, sync: { device: "phone" } });
  await set(page, "B", "notes", "b2", "b2");
  assert.equal((await sync(page, "B")).result.wiped, false);
  const held2 = await dump(page, "B", ["notes"]);
  assert.equal(Object.keys(held2.notes).length, 5);
  await withCd(fresh, "A", (cd) => cd.close());
  await wipeBoth(fresh);
  const replaced = await devicePage(context, h.server.url);
  const opened = await openInstance(replaced, "A", { name, user, sync: { device: "laptop" } });
  assert.equal(opened.wiped, false, "nothing local remembers the old store");
  assert.notEqual(opened.storeEpoch, known.storeEpoch);
  await withCd(replaced, "A", (cd) => {
    window.__wipes = [];
    cd.on("store-wiped", (e) => window.__wipes.push(e));
  });
  const reported = (await sync(replaced, "A")).result;
  assert.deepEqual([reported.wiped, reported.applied], [true, 5], "reported, and everything the server held came back");
  assert.deepEqual(await replaced.evaluate(() => window.__wipes), [{ epoch: opened.storeEpoch, previousEpoch: known.storeEpoch, applied: 5 }]);
  assert.equal((await withCd(replaced, "A", (cd) => cd.metadata())).wiped, true);
  const told = await withCd(replaced, "A", (cd) => cd.createVerifier().verify());
  assert.deepEqual(told.details.store, { epoch: opened.storeEpoch, wiped: true, previousEpoch: known.storeEpoch });
  assert.deepEqual(await dump(replaced, "A", ["notes"]), held2);
  assert.equal((await sync(replaced, "A")).result.wiped, false, "reported once");
  // The other device keeps syncing without a false report.
  await set(page, "B", "notes", "b3", "b3");
  assert.equal((await sync(page, "B")).result.wiped, false);
  assert.equal((await sync(replaced, "A")).result.wiped, false);
  assert.equal(await get(replaced, "A", "notes", "b3"), "b3");
});

scenario("malformed sync options are refused at open with InvalidOptionsError", async (context) => {
  const page = await devicePage(context, h.server.url);
  const user = unique("user");
  for (const sync of [{ pageLimit: 0 }, { pageLimit: 1001 }, { pageLimit: 2.5 }]) {
    await assert.rejects(openInstance(page, "bad", { name: unique("bad"), user, sync }), { name: "InvalidOptionsError", code: "invalid_options" }, JSON.stringify(sync));
  }
});
