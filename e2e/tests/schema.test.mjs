// IndexedDB schema migration on a real profile: a database left by a version 1 build (its
// `records` store still carries the `by_hlc` index) opens under this build with every row
// intact, on IndexedDB (no fallback), and is version 2 without the index afterwards.
import assert from "node:assert/strict";
import { harness } from "../lib/harness.mjs";
import { unique, devicePage } from "../lib/sync.mjs";

const h = harness();

h.scenario(
  "a version 1 database upgrades to version 2 with its rows and without the by_hlc index",
  async (context) => {
    const page = await devicePage(context, h.server.url);
    const out = await page.evaluate(async (name) => {
      const { ClientData } = await import("/pkg/index.js");
      const request = (r) => new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
      const done = (tx) => new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = tx.onabort = () => reject(tx.error); });

      // Rows as this build writes them (their HLC text included), saved, then the database
      // rebuilt in version 1's layout holding them.
      const first = await ClientData.open({ name });
      first.plugin("notes").set("draft", { title: "kept" });
      first.plugin("notes").set("theme", "dark");
      await first.close();
      const current = await request(indexedDB.open(name));
      const rows = await request(current.transaction("records").objectStore("records").getAll());
      current.close();
      await request(indexedDB.deleteDatabase(name));
      const open1 = indexedDB.open(name, 1);
      open1.onupgradeneeded = () => {
        const db = open1.result;
        db.createObjectStore("records", { keyPath: ["p", "k"] }).createIndex("by_hlc", "h");
        db.createObjectStore("meta");
        db.createObjectStore("vectors", { keyPath: ["kind", "plugin"] });
        db.createObjectStore("slots", { keyPath: "slot" });
        db.createObjectStore("epochs");
      };
      const v1 = await request(open1);
      const tx = v1.transaction("records", "readwrite");
      for (const row of rows) tx.objectStore("records").put(row);
      await done(tx);
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
      afterUpgrade: { version: 2, indexes: [], rows: 3 },
    });
  },
  60_000,
);
