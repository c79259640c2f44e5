// IndexedDB schema migration on a real profile: a database left by a version 1 build (its
// `records` store still carries the `by_hlc` index) opens under this build with every row
// intact, on IndexedDB (no fallback), and is the current version (3) without the index afterwards.
import assert from "node:assert/strict";
import { harness } from "../lib/harness.mjs";
import { unique, devicePage } from "../lib/sync.mjs";

const h = harness();

/** Page-side IndexedDB helpers (window.__idb), as the tests below run them in each tab. */
function installIdbHelpers(page) {
  return page.evaluate(() => {
    const request = (r) => new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
    const done = (tx) => new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = tx.onabort = () => reject(tx.error); });
    /** The promise, or a rejection naming `what` after `ms` (a blocked open never settles). */
    const within = (promise, ms, what) => Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms))]);
    /**
     * Two rows as this build writes them (their HLC text included), saved, then the database
     * `name` rebuilt in version 1's layout (records still indexed by_hlc) holding them: the open
     * version 1 connection and the rows.
     */
    const asOldLayout = async (name, version, write) => {
      const { ClientData } = await import("/pkg/index.js");
      const writer = await ClientData.open({ name });
      write(writer.plugin("notes"));
      await writer.close();
      const current = await request(indexedDB.open(name));
      const rows = await request(current.transaction("records").objectStore("records").getAll());
      current.close();
      await request(indexedDB.deleteDatabase(name));
      const opening = indexedDB.open(name, version);
      opening.onupgradeneeded = () => {
        const db = opening.result;
        const records = db.createObjectStore("records", { keyPath: ["p", "k"] });
        if (version === 1) records.createIndex("by_hlc", "h"); // dropped by version 2
        db.createObjectStore("meta");
        db.createObjectStore("vectors", { keyPath: ["kind", "plugin"] });
        db.createObjectStore("slots", { keyPath: "slot" });
        db.createObjectStore("epochs");
      };
      const db = await request(opening);
      const tx = db.transaction("records", "readwrite");
      for (const row of rows) tx.objectStore("records").put(row);
      await done(tx);
      return { db, rows };
    };
    const asVersion1 = (name) => asOldLayout(name, 1, (kv) => {
      kv.set("draft", { title: "kept" });
      kv.set("theme", "dark");
    });
    window.__idb = { request, done, within, asOldLayout, asVersion1 };
  });
}

h.scenario(
  "a version 1 database upgrades to the current version with its rows and without the by_hlc index",
  async (context) => {
    const page = await devicePage(context, h.server.url);
    await installIdbHelpers(page);
    const out = await page.evaluate(async (name) => {
      const { ClientData } = await import("/pkg/index.js");
      const { request, asVersion1 } = window.__idb;
      const { db: v1, rows } = await asVersion1(name);
      const before = { version: v1.version, indexes: [...v1.transaction("records").objectStore("records").indexNames] };
      v1.close();

      const cd = await ClientData.open({ name });
      const kv = cd.plugin("notes");
      const opened = { engine: cd.metadata().engine, draft: kv.get("draft"), theme: kv.get("theme"), keys: kv.keys() };
      kv.set("after", 1);
      await cd.close();
      const upgraded = await request(indexedDB.open(name));
      const afterUpgrade = { version: upgraded.version, indexes: [...upgraded.transaction("records").objectStore("records").indexNames], rows: (await request(upgraded.transaction("records").objectStore("records").getAll())).length };
      upgraded.close();
      return { saved: rows.length, before, opened, afterUpgrade };
    }, unique("schema"));
    assert.deepEqual(out, {
      saved: 2,
      before: { version: 1, indexes: ["by_hlc"] },
      opened: { engine: "indexeddb", draft: { title: "kept" }, theme: "dark", keys: ["draft", "theme"] },
      afterUpgrade: { version: 3, indexes: [], rows: 3 },
    });
  },
  60_000,
);

h.scenario(
  "a version 2 database (no packs store) upgrades to version 3 with its rows, then stores a big commit as one pack",
  async (context) => {
    const page = await devicePage(context, h.server.url);
    await installIdbHelpers(page);
    const out = await page.evaluate(async (name) => {
      const { ClientData } = await import("/pkg/index.js");
      const { request, asOldLayout } = window.__idb;
      // Rows as this build writes them, then the database rebuilt in version 2's layout.
      const { db: v2, rows } = await asOldLayout(name, 2, (kv) => {
        kv.set("draft", { title: "kept" });
        kv.delete("gone");
      });
      const before = { version: v2.version, stores: [...v2.objectStoreNames] };
      v2.close();

      const cd = await ClientData.open({ name });
      const kv = cd.plugin("notes");
      const opened = { engine: cd.metadata().engine, draft: kv.get("draft"), gone: kv.has("gone"), keys: kv.keys() };
      await kv.setMany(Array.from({ length: 100 }, (_, i) => [`n${i}`, i]));
      await cd.close();
      const upgraded = await request(indexedDB.open(name));
      const t = upgraded.transaction(["records", "packs"]);
      const after = {
        version: upgraded.version,
        stores: [...upgraded.objectStoreNames],
        rows: (await request(t.objectStore("records").getAll())).length,
        packs: (await request(t.objectStore("packs").getAll())).map((p) => p.rows.length),
      };
      upgraded.close();
      const again = await ClientData.open({ name });
      const reread = { draft: again.plugin("notes").get("draft"), n99: again.plugin("notes").get("n99"), count: again.plugin("notes").keys({ limit: 1000 }).length };
      await again.close();
      return { saved: rows.length, before, opened, after, reread };
    }, unique("schema2"));
    assert.deepEqual(out, {
      saved: 2,
      before: { version: 2, stores: ["epochs", "meta", "records", "slots", "vectors"] },
      opened: { engine: "indexeddb", draft: { title: "kept" }, gone: false, keys: ["draft"] },
      after: { version: 3, stores: ["epochs", "meta", "packs", "records", "slots", "vectors"], rows: 2, packs: [100] },
      reread: { draft: { title: "kept" }, n99: 99, count: 101 },
    });
  },
  60_000,
);

// Schema upgrades with another tab open. Every tab of an origin shares one IndexedDB database,
// so a tab still running an older build holds it open at the older version when a newer build
// opens it in another tab; the newer open waits ("blocked") until every older connection has
// closed. Both directions are real tabs of one profile here.

h.scenario(
  "a tab of the previous release holds version 1 open: a second tab opens this build, upgrades without waiting, the old tab lets go",
  async (context) => {
    const old = await devicePage(context, h.server.url);
    const fresh = await devicePage(context, h.server.url);
    await installIdbHelpers(old);
    await installIdbHelpers(fresh);
    const name = unique("upgrade-open");

    // The old tab: version 1's layout (records still indexed by_hlc) holding rows as written
    // by the library, opened and kept open the way version 1 did: the only thing it does on
    // `versionchange` is close its connection (it had no event for the app yet).
    const held = await old.evaluate(async (name) => {
      const { db: v1, rows } = await window.__idb.asVersion1(name);
      window.__old = { db: v1, versionchange: null };
      v1.onversionchange = (e) => {
        window.__old.versionchange = { oldVersion: e.oldVersion, newVersion: e.newVersion };
        v1.close();
      };
      return { version: v1.version, rows: rows.length };
    }, name);
    assert.deepEqual(held, { version: 1, rows: 2 });

    // The new tab: this build opens the same database while the old tab still holds it.
    const opened = await fresh.evaluate(async (name) => {
      const { ClientData } = await import("/pkg/index.js");
      const started = performance.now();
      const cd = await window.__idb.within(ClientData.open({ name }), 10_000, "ClientData.open under an open version 1 tab");
      const ms = Math.round(performance.now() - started);
      const kv = cd.plugin("notes");
      const out = { engine: cd.metadata().engine, fallbackReason: cd.metadata().fallbackReason ?? null, draft: kv.get("draft"), theme: kv.get("theme") };
      kv.set("after", 1);
      await cd.close();
      return { ms, ...out };
    }, name);
    const { ms, ...store } = opened;
    assert.deepEqual(store, { engine: "indexeddb", fallbackReason: null, draft: { title: "kept" }, theme: "dark" });
    // Not blocked: a blocked upgrade waits until the old tab is closed (here: forever).
    assert.ok(ms < 5_000, `the upgrade took ${ms} ms`);

    // The old tab heard the version change and let go of its connection.
    const after = await old.evaluate(() => {
      let usable;
      try {
        window.__old.db.transaction("records");
        usable = true;
      } catch (e) {
        usable = e.name;
      }
      return { versionchange: window.__old.versionchange, usable };
    });
    assert.deepEqual(after, { versionchange: { oldVersion: 1, newVersion: 3 }, usable: "InvalidStateError" });

    const upgraded = await fresh.evaluate(async (name) => {
      const { request } = window.__idb;
      const db = await request(indexedDB.open(name));
      const out = { version: db.version, indexes: [...db.transaction("records").objectStore("records").indexNames], rows: (await request(db.transaction("records").objectStore("records").getAll())).length };
      db.close();
      return out;
    }, name);
    assert.deepEqual(upgraded, { version: 3, indexes: [], rows: 3 });
  },
  60_000,
);

h.scenario(
  "this build open in one tab, a newer build upgrades from another: not blocked, the open tab closes and tells the app",
  async (context) => {
    const current = await devicePage(context, h.server.url);
    const newer = await devicePage(context, h.server.url);
    await installIdbHelpers(current);
    await installIdbHelpers(newer);
    const name = unique("upgrade-newer");

    await current.evaluate(async (name) => {
      const { ClientData } = await import("/pkg/index.js");
      const cd = await ClientData.open({ name });
      cd.plugin("notes").set("draft", "before the upgrade");
      await cd.flush();
      window.__current = { cd, told: [] };
      addEventListener("clientdata:versionchange", (e) => window.__current.told.push(e.detail));
    }, name);

    // The newer build: version 4 adds a store (what a next release's migration would do).
    const upgrade = await newer.evaluate(async (name) => {
      const { request, within } = window.__idb;
      const started = performance.now();
      let blocked = false;
      const open4 = indexedDB.open(name, 4);
      open4.onblocked = () => (blocked = true);
      open4.onupgradeneeded = (e) => {
        open4.result.createObjectStore("v4_notes");
        window.__oldVersion = e.oldVersion;
      };
      const db = await within(request(open4), 10_000, "the version 4 open beside an open ClientData");
      const out = { ms: Math.round(performance.now() - started), blocked, oldVersion: window.__oldVersion, version: db.version, rows: (await request(db.transaction("records").objectStore("records").getAll())).length };
      db.close();
      return out;
    }, name);
    const { ms, ...result } = upgrade;
    assert.deepEqual(result, { blocked: false, oldVersion: 3, version: 4, rows: 1 });
    assert.ok(ms < 5_000, `the upgrade took ${ms} ms`);

    const told = await current.evaluate(async () => {
      const { cd, told } = window.__current;
      // What the store had stays readable from memory; the app was told to reload.
      return { told, draft: cd.plugin("notes").get("draft") };
    });
    assert.deepEqual(told, { told: [{ name }], draft: "before the upgrade" });
  },
  60_000,
);

h.scenario(
  "a tab that never closes its version 1 connection: open() tells the app the upgrade is blocked, and completes once that tab lets go",
  async (context) => {
    const old = await devicePage(context, h.server.url);
    const fresh = await devicePage(context, h.server.url);
    await installIdbHelpers(old);
    await installIdbHelpers(fresh);
    const name = unique("upgrade-blocked");

    // Version 1's layout held open by code that ignores `versionchange` (the app's own raw
    // connection, or a build older than close-on-versionchange).
    await old.evaluate(async (name) => {
      const { request } = window.__idb;
      const open1 = indexedDB.open(name, 1);
      open1.onupgradeneeded = () => {
        const db = open1.result;
        db.createObjectStore("records", { keyPath: ["p", "k"] }).createIndex("by_hlc", "h");
        db.createObjectStore("meta");
        db.createObjectStore("vectors", { keyPath: ["kind", "plugin"] });
        db.createObjectStore("slots", { keyPath: "slot" });
        db.createObjectStore("epochs");
      };
      window.__held = await request(open1);
    }, name);

    await fresh.evaluate(async (name) => {
      const { ClientData } = await import("/pkg/index.js");
      window.__blocked = [];
      addEventListener("clientdata:upgrade-blocked", (e) => window.__blocked.push(e.detail));
      window.__open = { settled: false };
      ClientData.open({ name }).then(
        (cd) => Object.assign(window.__open, { settled: true, engine: cd.metadata().engine, cd }),
        (e) => Object.assign(window.__open, { settled: true, error: String(e) }),
      );
    }, name);
    await fresh.waitForFunction(() => window.__blocked.length > 0, null, { timeout: 10_000 });
    // Still waiting for the old tab a while later: nothing settled the open behind its back.
    await new Promise((r) => setTimeout(r, 500));
    const waiting = await fresh.evaluate(() => ({ blocked: window.__blocked, settled: window.__open.settled }));
    assert.deepEqual(waiting, { blocked: [{ name, oldVersion: 1, newVersion: 3 }], settled: false });

    await old.evaluate(() => window.__held.close());
    await fresh.waitForFunction(() => window.__open.settled, null, { timeout: 10_000 });
    const opened = await fresh.evaluate(async () => {
      const { engine, error, cd } = window.__open;
      cd?.plugin("notes").set("after", 1);
      await cd?.close();
      return { engine, error };
    });
    assert.deepEqual(opened, { engine: "indexeddb", error: undefined });
  },
  60_000,
);
