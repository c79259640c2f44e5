// Two reference server processes on one PostgreSQL database (the scale-out deployment of
// docs/DEPLOY.md): device A's page is served by and syncs with process 1, device B's with
// process 2; they converge, and a key written on both ends with the same winner on both.
// Needs the cluster at CLIENTDATA_TEST_PG (scripts/test.sh starts it; without it the file is
// skipped, unless CLIENTDATA_REQUIRE_PG=1, which makes that a failure).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, freshPostgres } from "../lib/server.mjs";
import { launch } from "../lib/browser.mjs";
import { unique, devicePage, openInstance, sync, set, del, get, dump } from "../lib/sync.mjs";

const PG = process.env.CLIENTDATA_TEST_PG;
if (!PG && process.env.CLIENTDATA_REQUIRE_PG === "1") throw new Error("CLIENTDATA_REQUIRE_PG=1 but CLIENTDATA_TEST_PG is not set");
const skip = PG ? false : "CLIENTDATA_TEST_PG is not set";

let one, two, browser;
before(async () => {
  if (skip) return;
  const database = freshPostgres();
  one = await startServer({ database });
  two = await startServer({ database });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await one?.stop();
  await two?.stop();
});

/** Device A on process 1 and device B on process 2, one user, each page its own origin. */
async function devices(context) {
  const user = unique("user");
  const pages = { A: await devicePage(context, one.url), B: await devicePage(context, two.url) };
  for (const id of ["A", "B"]) await openInstance(pages[id], id, { name: unique(`db${id}`), user });
  return pages;
}

test("devices on two server processes converge through one PostgreSQL", { skip, timeout: 90_000 }, async () => {
  const context = await browser.newContext();
  try {
    const { A, B } = await devices(context);
    await set(A, "A", "notes", "a1", { n: 1 });
    await set(A, "A", "notes", "shared", "from A");
    await set(B, "B", "notes", "b1", [1, 2]);
    await set(B, "B", "todo", "t1", true);
    assert.equal((await sync(A, "A")).result.shipped, 2);
    const b = (await sync(B, "B")).result;
    assert.deepEqual([b.shipped, b.applied], [2, 2], "B (process 2) got A's writes (process 1)");
    assert.equal((await sync(A, "A")).result.applied, 2, "A (process 1) got B's writes (process 2)");
    const first = { notes: { a1: { n: 1 }, b1: [1, 2], shared: "from A" }, todo: { t1: true } };
    assert.deepEqual(await dump(A, "A", ["notes", "todo"]), first);
    assert.deepEqual(await dump(B, "B", ["notes", "todo"]), first);

    await del(B, "B", "notes", "a1");
    await set(B, "B", "notes", "shared", "from B");
    await set(A, "A", "todo", "t2", "two");
    await sync(B, "B");
    await sync(A, "A");
    await sync(B, "B");
    const second = { notes: { b1: [1, 2], shared: "from B" }, todo: { t1: true, t2: "two" } };
    assert.deepEqual(await dump(A, "A", ["notes", "todo"]), second);
    assert.deepEqual(await dump(B, "B", ["notes", "todo"]), second);
    assert.equal(await get(A, "A", "notes", "a1"), undefined);
  } finally {
    await context.close();
  }
});

test("one key written through both processes at once ends with one winner everywhere", { skip, timeout: 90_000 }, async () => {
  const context = await browser.newContext();
  try {
    const user = unique("user");
    const A = await devicePage(context, one.url);
    const B = await devicePage(context, two.url);
    await openInstance(A, "A", { name: unique("dbA"), user });
    await openInstance(B, "B", { name: unique("dbB"), user });
    for (let i = 0; i < 5; i++) {
      await set(A, "A", "race", "k", `A${i}`);
      await set(B, "B", "race", "k", `B${i}`);
      // Both rounds in flight at the same moment, one through each process.
      await Promise.all([sync(A, "A"), sync(B, "B")]);
    }
    await sync(A, "A");
    await sync(B, "B");
    const winner = await get(A, "A", "race", "k");
    assert.match(winner, /^[AB]4$/, "the last write of one of them wins");
    assert.equal(await get(B, "B", "race", "k"), winner);
    // A third device, new to the user, reads the same winner through either process.
    for (const [id, server] of [["C", one], ["D", two]]) {
      const page = await devicePage(context, server.url);
      await openInstance(page, id, { name: unique(`db${id}`), user });
      await sync(page, id);
      assert.equal(await get(page, id, "race", "k"), winner, `${id} through ${server.url}`);
    }
  } finally {
    await context.close();
  }
});
