// The package entry's read path (js/index.js + src/store/read_cache.rs): `get`/`has` answered
// from a JS Map without entering wasm. Every test first reads a key so it is cached, then
// changes it another way (a local write, setMany, a failed write, close, another tab, a sync
// round) and checks the next read sees exactly what the store holds.
import assert from "node:assert/strict";
import { harness } from "../lib/harness.mjs";
import { openDevice } from "../lib/browser.mjs";
import { unique, devicePage, openInstance, withCd, sync, poll } from "../lib/sync.mjs";

const h = harness();

const scenario = (name, fn) => h.scenario(name, fn, 60_000);

/** A page with one open instance "A" of its own database. */
async function single(context) {
  const page = await devicePage(context, h.server.url);
  await openInstance(page, "A", { name: unique("rc"), user: unique("user"), server: null });
  return page;
}

scenario("hits are answered from the JS map the store keeps (the read path is installed)", async (context) => {
  const page = await single(context);
  const out = await withCd(page, "A", (cd) => {
    const kv = cd.plugin("rc");
    kv.set("k", "v1");
    const first = kv.get("k");
    const mirrored = kv.__readCache().get("k");
    // White-box: poison the map; a read that returns the poison was answered by the map.
    kv.__readCache().set("k", "from-the-map");
    const viaMap = kv.get("k");
    kv.set("k", "v2"); // and the store's own write replaces the poison
    return { first, mirrored, viaMap, after: kv.get("k"), sameMap: cd.plugin("rc").__readCache() === kv.__readCache() };
  });
  assert.deepEqual(out, { first: "v1", mirrored: "v1", viaMap: "from-the-map", after: "v2", sameMap: true });
});

scenario("local writes: overwrite, delete, null, objects as fresh copies, failed writes change nothing", async (context) => {
  const page = await single(context);
  const out = await withCd(page, "A", (cd) => {
    const kv = cd.plugin("rc");
    const seen = [];
    kv.set("k", 1);
    seen.push(kv.get("k"), kv.has("k"));
    kv.set("k", 2);
    seen.push(kv.get("k"));
    kv.set("k", null);
    seen.push(kv.get("k"), kv.has("k"));
    kv.set("k", { n: 1 });
    const a = kv.get("k");
    a.n = 99;
    seen.push(kv.get("k"), kv.get("k") === kv.get("k"));
    kv.set("k", "text");
    seen.push(kv.get("k"));
    let failed = null;
    try {
      kv.set("k", () => 1);
    } catch (e) {
      failed = e.name;
    }
    seen.push(failed, kv.get("k"));
    kv.delete("k");
    seen.push(kv.get("k") === undefined, kv.has("k"));
    return seen;
  });
  assert.deepEqual(out, [1, true, 2, null, true, { n: 1 }, false, "text", "InvalidValueError", "text", true, false]);
});

scenario("invalid keys still get typed errors when an equal-looking key is cached", async (context) => {
  const page = await single(context);
  const out = await withCd(page, "A", (cd) => {
    const kv = cd.plugin("rc");
    kv.set("5", "five");
    kv.get("5");
    const name = (f) => {
      try {
        f();
        return "no error";
      } catch (e) {
        return e.name;
      }
    };
    return [name(() => kv.get(5)), name(() => kv.has(5)), name(() => kv.get("")), name(() => kv.get("\uD800")), name(() => kv.get({ toString: () => "5" })), kv.get("5")];
  });
  assert.deepEqual(out, ["InvalidKeyError", "InvalidKeyError", "InvalidKeyError", "InvalidKeyError", "InvalidKeyError", "five"]);
});

scenario("setMany replaces cached values once durable", async (context) => {
  const page = await single(context);
  const out = await withCd(page, "A", async (cd) => {
    const kv = cd.plugin("rc");
    kv.set("a", "old");
    kv.set("b", "old");
    const before = [kv.get("a"), kv.get("b")];
    await kv.setMany([["a", "new"], ["b", { x: 1 }]]);
    return { before, after: [kv.get("a"), kv.get("b")] };
  });
  assert.deepEqual(out, { before: ["old", "old"], after: ["new", { x: 1 }] });
});

scenario("after close, even cached keys fail with StoreClosedError", async (context) => {
  const page = await single(context);
  const out = await withCd(page, "A", async (cd) => {
    const kv = cd.plugin("rc");
    kv.set("k", "v");
    const before = kv.get("k");
    await cd.close();
    const names = [];
    for (const f of [() => kv.get("k"), () => kv.has("k")]) {
      try {
        f();
        names.push("no error");
      } catch (e) {
        names.push(e.name);
      }
    }
    return { before, names };
  });
  assert.deepEqual(out, { before: "v", names: ["StoreClosedError", "StoreClosedError"] });
});

scenario("a freed PluginStore no longer answers from the map; a fresh one does", async (context) => {
  const page = await single(context);
  const out = await withCd(page, "A", (cd) => {
    const kv = cd.plugin("rc");
    kv.set("k", "v");
    kv.get("k");
    kv.free();
    let freed;
    try {
      freed = `no error: ${kv.get("k")}`;
    } catch (e) {
      freed = e instanceof Error;
    }
    return { freed, fresh: cd.plugin("rc").get("k") };
  });
  assert.deepEqual(out, { freed: true, fresh: "v" });
});

scenario("another tab's writes and deletes replace what this tab cached", async (context) => {
  const device = unique("rctab");
  const one = await openDevice(context, h.server.url, device, 1);
  const two = await openDevice(context, h.server.url, device, 2);
  await one.evaluate(() => window.clientdata.plugin("notes").set("shared", "v1"));
  const read = () => two.evaluate(() => window.clientdata.plugin("notes").get("shared"));
  assert.equal(await poll(async () => (await read()) === "v1", 5000), true, "tab 2 sees v1");
  await one.evaluate(() => window.clientdata.plugin("notes").set("shared", "v2"));
  assert.equal(await poll(async () => (await read()) === "v2", 5000), true, "tab 2 sees v2 after reading v1");
  await one.evaluate(() => window.clientdata.plugin("notes").delete("shared"));
  assert.equal(await poll(async () => (await read()) === undefined, 5000), true, "tab 2 sees the delete");
  assert.equal(await two.evaluate(() => window.clientdata.plugin("notes").has("shared")), false);
});

scenario("a sync round replaces and deletes what the other device cached", async (context) => {
  const page = await devicePage(context, h.server.url);
  const user = unique("user");
  for (const id of ["A", "B"]) await openInstance(page, id, { name: unique(`rc${id}`), user });
  const write = (id, value) =>
    withCd(page, id, (cd, value) => (value === undefined ? cd.plugin("p").delete("k") : cd.plugin("p").set("k", value)), value);
  const read = (id) => withCd(page, id, (cd) => [cd.plugin("p").get("k") ?? "absent", cd.plugin("p").has("k")]);

  await write("A", "v1");
  await sync(page, "A");
  await sync(page, "B");
  assert.deepEqual(await read("B"), ["v1", true]);
  await write("A", "v2");
  await sync(page, "A");
  await sync(page, "B");
  assert.deepEqual(await read("B"), ["v2", true]);
  await write("A", undefined);
  await sync(page, "A");
  await sync(page, "B");
  assert.deepEqual(await read("B"), ["absent", false]);
});
