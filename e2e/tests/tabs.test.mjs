// Real tabs of one browser against the real server: the store and the locks across tabs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { harness } from "../lib/harness.mjs";
import { openDevice, unsupported } from "../lib/browser.mjs";
import { poll } from "../lib/sync.mjs";

const h = harness();

/**
 * Only Chromium can kill a tab's renderer from outside without running its unload handlers
 * (CDP Page.crash): WebDriver BiDi and classic WebDriver only close a page, which runs them,
 * and that is not the crash these tests are about.
 */
const CRASH = unsupported({
  firefox: "needs a hard tab crash (CDP Page.crash); WebDriver BiDi can only close the page, which runs its unload handlers",
  webkit: "needs a hard tab crash (CDP Page.crash); classic WebDriver can only close the window, which runs its unload handlers",
});

/** Kills a tab's renderer the hard way: no unload handlers, no flush, no close(). */
async function crash(page) {
  const cdp = await page.context().newCDPSession(page);
  // The session dies with the renderer, so the command may never answer: give it a moment.
  const sent = cdp.send("Page.crash").catch(() => {});
  await Promise.race([sent, new Promise((r) => setTimeout(r, 1000))]);
}

test("a write in tab 1 appears in tab 2 of the same device", async () => {
  const context = await h.browser.newContext();
  const device = `tabs${Date.now()}`;
  const one = await openDevice(context, h.server.url, device, 1);
  const two = await openDevice(context, h.server.url, device, 2);
  const slots = await Promise.all([one, two].map((p) => p.evaluate(() => window.clientdata.metadata().slot)));
  assert.notEqual(slots[0], slots[1], "two tabs must hold different writer slots");
  await one.evaluate(() => window.clientdata.plugin("notes").set("shared", { from: "tab 1" }));
  const seen = await poll(() => two.evaluate(() => window.clientdata.plugin("notes").get("shared")), 2000, 20);
  assert.deepEqual(seen, { from: "tab 1" });
  await context.close();
});

test("4 tabs x 1,000 withLock increments of a shared counter end at exactly 4,000", async () => {
  const context = await h.browser.newContext();
  const device = `count${Date.now()}`;
  const tabs = await Promise.all([1, 2, 3, 4].map((t) => openDevice(context, h.server.url, device, t)));
  // The counter lives in raw IndexedDB, read and written in two separate transactions with an
  // await between them: without mutual exclusion, updates are lost.
  const run = (page) =>
    page.evaluate(async () => {
      const db = await new Promise((resolve, reject) => {
        const r = indexedDB.open("e2e-counter", 1);
        r.onupgradeneeded = () => r.result.createObjectStore("c");
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error);
      });
      const req = (store, op) => new Promise((resolve, reject) => { const r = op(store); r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
      const lock = window.clientdata.createLock("e2e/counter", { ttlMs: 30_000, maxWaitMs: 120_000 });
      for (let i = 0; i < 1000; i++) {
        await lock.withLock(async () => {
          const n = (await req(db.transaction("c").objectStore("c"), (s) => s.get("n"))) ?? 0;
          await req(db.transaction("c", "readwrite").objectStore("c"), (s) => s.put(n + 1, "n"));
        });
      }
      db.close();
    });
  await Promise.all(tabs.map(run));
  const total = await tabs[0].evaluate(
    () =>
      new Promise((resolve) => {
        const r = indexedDB.open("e2e-counter", 1);
        r.onsuccess = () => {
          const g = r.result.transaction("c").objectStore("c").get("n");
          g.onsuccess = () => resolve(g.result);
        };
      }),
  );
  assert.equal(total, 4000);
  await context.close();
});

test("the holding tab killed: the next waiter acquires within retryIntervalMs + 1 s", { skip: CRASH }, async () => {
  const context = await h.browser.newContext();
  const device = `kill${Date.now()}`;
  const holder = await openDevice(context, h.server.url, device, 1);
  const waiter = await openDevice(context, h.server.url, device, 2);
  const options = { ttlMs: 30_000, retryIntervalMs: 1000, maxWaitMs: 20_000 };
  await holder.evaluate((o) => window.clientdata.createLock("e2e/kill", o).acquire(), options);
  const acquired = waiter.evaluate(async (o) => {
    await window.clientdata.createLock("e2e/kill", o).acquire();
    return Date.now();
  }, options);
  await new Promise((r) => setTimeout(r, 300)); // the waiter is queued
  const killedAt = Date.now();
  await crash(holder);
  const elapsed = (await acquired) - killedAt;
  assert.ok(elapsed < options.retryIntervalMs + 1000, `acquired ${elapsed} ms after the holder died`);
  await context.close();
});

test("a tab killed right after set() returns loses none of the writes it reported durable", { skip: CRASH }, async () => {
  const context = await h.browser.newContext();
  const device = `crash${Date.now()}`;
  const writer = await openDevice(context, h.server.url, device, 1);
  // 800 x 1 KiB fits the journal's 2 MiB budget (localStorage counts UTF-16, 2 bytes a char):
  // every set() is durable when it returns (pendingBytes stays 0). Beyond the budget writes
  // are accepted but reported pending, and the store never claims they survive a crash.
  const { count, pendingBytes, journalBytes } = await writer.evaluate(() => {
    const kv = window.clientdata.plugin("notes");
    const value = "x".repeat(1024);
    for (let i = 0; i < 800; i++) kv.set(`k${i}`, `${i}:${value}`);
    const m = window.clientdata.metadata();
    return { count: 800, pendingBytes: m.pendingBytes, journalBytes: m.journalBytes };
  });
  assert.equal(pendingBytes, 0, "every write claimed durable");
  assert.ok(journalBytes > 800 * 1024, `the writes sit in the journal (${journalBytes} bytes)`);
  await crash(writer); // no flush, no close: whatever IndexedDB lacks is only in the journal
  const reader = await openDevice(context, h.server.url, device, 2);
  const missing = await reader.evaluate((n) => {
    const kv = window.clientdata.plugin("notes");
    const lost = [];
    for (let i = 0; i < n; i++) if (!String(kv.get(`k${i}`)).startsWith(`${i}:`)) lost.push(i);
    return lost;
  }, count);
  assert.deepEqual(missing, []);
  await context.close();
});

test("writes beyond the journal budget are reported pending until committed", async () => {
  const context = await h.browser.newContext();
  const writer = await openDevice(context, h.server.url, `budget${Date.now()}`, 1);
  const { pendingBefore, pendingAfter } = await writer.evaluate(async () => {
    const kv = window.clientdata.plugin("notes");
    const value = "y".repeat(1024);
    for (let i = 0; i < 3000; i++) kv.set(`k${i}`, value);
    const pendingBefore = window.clientdata.metadata().pendingBytes;
    await window.clientdata.flush();
    return { pendingBefore, pendingAfter: window.clientdata.metadata().pendingBytes };
  });
  assert.ok(pendingBefore > 0, "over-budget writes are not claimed durable");
  assert.equal(pendingAfter, 0, "committed writes are no longer pending");
  await context.close();
});

test("leases on demand: a holder writes none until a waiter in another tab asks, then the waiter's timeout names it", async () => {
  const context = await h.browser.newContext();
  const device = `ondemand${Date.now()}`;
  const holder = await openDevice(context, h.server.url, device, 1);
  const waiter = await openDevice(context, h.server.url, device, 2);
  const leaseKeys = () => holder.evaluate(() => Object.keys(localStorage).filter((k) => k.includes(":lease:")));
  const info = await holder.evaluate(async () => {
    window.heldLock = window.clientdata.createLock("e2e/ondemand", { ttlMs: 3000 });
    await window.heldLock.acquire();
    return window.heldLock.inspect();
  });
  assert.deepEqual(await leaseKeys(), [], "an uncontended grant writes no lease");
  const error = await waiter.evaluate(async () => {
    try {
      await window.clientdata.createLock("e2e/ondemand", { maxWaitMs: 1500, retryIntervalMs: 100 }).acquire();
      return null;
    } catch (e) {
      return { name: e.name, holder: e.holder };
    }
  });
  assert.deepEqual(error, { name: "LockTimeoutError", holder: info.holder });
  assert.equal((await leaseKeys()).length, 1, "asked, the holder published its lease");
  const seen = await waiter.evaluate(() => window.clientdata.createLock("e2e/ondemand", {}).inspect());
  assert.equal(seen?.nonce, info.nonce, "inspect in another tab sees the holder");
  await holder.evaluate(() => window.heldLock.release());
  assert.deepEqual(await leaseKeys(), [], "a published lease is removed at release");
  await context.close();
});

test("epochs across tabs: two tabs given the same epoch claim different ones, and the older grant's fenced write is refused", async () => {
  const context = await h.browser.newContext();
  const device = `claims${Date.now()}`;
  const one = await openDevice(context, h.server.url, device, 1);
  const two = await openDevice(context, h.server.url, device, 2);
  // Both tabs learn the (empty) epochs store at their first grant, then hear nothing of each other.
  for (const tab of [one, two]) await tab.evaluate(() => window.clientdata.createLock("e2e/claims", {}).withLock(() => {}));
  const grantAndWrite = (tab, value) =>
    tab.evaluate(async (v) => {
      const lock = window.clientdata.createLock("e2e/claims", {});
      const grant = await lock.acquire();
      await window.clientdata.plugin("notes").setMany([["claimed", v]], { fence: grant });
      await lock.release();
      window.lastGrant = grant;
      return grant.epoch;
    }, value);
  const first = await grantAndWrite(one, "one");
  const second = await grantAndWrite(two, "two");
  assert.equal(first, second, "each tab proposes from what it knows: the same epoch");
  const late = await one.evaluate(async () => {
    try {
      await window.clientdata.plugin("notes").setMany([["claimed", "late"]], { fence: window.lastGrant });
      return null;
    } catch (e) {
      return e.code;
    }
  });
  assert.equal(late, "lock_lost", "the older grant's write must be refused");
  assert.equal(await two.evaluate(() => window.clientdata.plugin("notes").get("claimed")), "two");
  await context.close();
});
