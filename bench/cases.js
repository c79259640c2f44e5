// Benchmark cases, run inside Chromium. Each (case, library) pair gets a fresh database and
// returns { ms, ops } for the timed part only, or null when the library lacks the feature.
import * as idbKeyval from "/bench/node_modules/idb-keyval/dist/index.js";
import { createStore as createTinyBase } from "/bench/node_modules/tinybase/index.js";

let clientdata = null;
async function loadClientData() {
  if (clientdata === null) {
    try {
      const mod = await import("/pkg/clientdata.js");
      await mod.default();
      clientdata = mod;
    } catch (e) {
      clientdata = { error: String(e) };
    }
  }
  return clientdata.ClientData ? clientdata : null;
}

const VALUE = Array.from({ length: 1024 }, (_, i) => String.fromCharCode(97 + ((i * 7) % 26))).join("");
const fresh = (tag) => `bench-${tag}-${Date.now()}-${Math.random().toString(36).slice(2)}`;

function idbRequest(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}
function idbDone(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = tx.onabort = () => reject(tx.error);
  });
}
async function rawOpen(name) {
  const request = indexedDB.open(name, 1);
  request.onupgradeneeded = () => request.result.createObjectStore("kv");
  return idbRequest(request);
}
async function rawPutAll(db, count) {
  const tx = db.transaction("kv", "readwrite");
  const store = tx.objectStore("kv");
  for (let i = 0; i < count; i++) store.put(VALUE, `k${i}`);
  await idbDone(tx);
}
// Deletes a database; a peer that keeps its connection open (idb-keyval does) would block the
// delete forever, so a blocked delete completes later on its own and we move on.
function drop(name) {
  return new Promise((resolve) => {
    const request = indexedDB.deleteDatabase(name);
    request.onsuccess = request.onerror = request.onblocked = () => resolve();
  });
}
async function timed(fn) {
  const start = performance.now();
  const ops = await fn();
  return { ms: performance.now() - start, ops };
}
async function openClientData(name) {
  const cd = await loadClientData();
  if (!cd) return null;
  return cd.ClientData.open({ name });
}
async function closeClientData(db, name) {
  await db.close();
  await drop(name);
  localStorage.clear();
}

export const cases = {
  // W1: single writes, each durable when the call returns.
  W1: {
    n: { full: 1000, smoke: 50 },
    async clientdata(n) {
      const name = fresh("w1");
      const db = await openClientData(name);
      if (!db) return null;
      const kv = db.plugin("bench");
      const result = await timed(() => {
        for (let i = 0; i < n; i++) kv.set(`k${i}`, VALUE);
        return n;
      });
      await kv.flush();
      await closeClientData(db, name);
      return result;
    },
    async "idb-keyval"(n) {
      const name = fresh("w1k");
      const store = idbKeyval.createStore(name, "kv");
      const result = await timed(async () => {
        for (let i = 0; i < n; i++) await idbKeyval.set(`k${i}`, VALUE, store);
        return n;
      });
      await drop(name);
      return result;
    },
    async "raw IndexedDB, one transaction per put"(n) {
      const name = fresh("w1r");
      const db = await rawOpen(name);
      const result = await timed(async () => {
        for (let i = 0; i < n; i++) {
          const tx = db.transaction("kv", "readwrite");
          tx.objectStore("kv").put(VALUE, `k${i}`);
          await idbDone(tx);
        }
        return n;
      });
      db.close();
      await drop(name);
      return result;
    },
    async "localStorage setItem"(n) {
      localStorage.clear();
      const result = await timed(() => {
        for (let i = 0; i < n; i++) localStorage.setItem(`bench:k${i}`, VALUE);
        return n;
      });
      localStorage.clear();
      return result;
    },
  },

  // W2: bulk writes until durable.
  W2: {
    n: { full: 10000, smoke: 200 },
    async clientdata(n) {
      const name = fresh("w2");
      const db = await openClientData(name);
      if (!db) return null;
      const kv = db.plugin("bench");
      const result = await timed(async () => {
        for (let i = 0; i < n; i++) kv.set(`k${i}`, VALUE);
        await kv.flush();
        return n;
      });
      await closeClientData(db, name);
      return result;
    },
    async "raw IndexedDB, one transaction"(n) {
      const name = fresh("w2r");
      const db = await rawOpen(name);
      const result = await timed(async () => {
        await rawPutAll(db, n);
        return n;
      });
      db.close();
      await drop(name);
      return result;
    },
  },

  // R: synchronous reads of 1,000 keys, cycled.
  R: {
    n: { full: 100000, smoke: 2000 },
    async clientdata(n) {
      const name = fresh("r");
      const db = await openClientData(name);
      if (!db) return null;
      const kv = db.plugin("bench");
      const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`);
      for (const k of keys) kv.set(k, VALUE);
      let hits = 0;
      const result = await timed(() => {
        for (let i = 0; i < n; i++) if (kv.get(keys[i % 1000]) !== undefined) hits++;
        return n;
      });
      if (hits !== n) throw new Error(`clientdata R: ${hits} hits of ${n}`);
      await closeClientData(db, name);
      return result;
    },
    async "TinyBase getValue"(n) {
      const store = createTinyBase();
      const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`);
      for (const k of keys) store.setValue(k, VALUE);
      let hits = 0;
      const result = await timed(() => {
        for (let i = 0; i < n; i++) if (store.getValue(keys[i % 1000]) !== undefined) hits++;
        return n;
      });
      if (hits !== n) throw new Error(`TinyBase R: ${hits} hits of ${n}`);
      return result;
    },
  },

  // O: open to first read with n records stored (lower is better; ops = 1).
  O: {
    n: { full: 10000, smoke: 200 },
    lowerIsBetter: true,
    async clientdata(n) {
      const name = fresh("o");
      const cd = await loadClientData();
      if (!cd) return null;
      const seed = await cd.ClientData.open({ name });
      const kv = seed.plugin("bench");
      for (let i = 0; i < n; i++) kv.set(`k${i}`, VALUE);
      await kv.flush();
      await seed.close();
      const result = await timed(async () => {
        const db = await cd.ClientData.open({ name });
        if (db.plugin("bench").get("k0") === undefined) throw new Error("clientdata O: k0 missing");
        await db.close();
        return 1;
      });
      await drop(name);
      localStorage.clear();
      return result;
    },
    async "raw IndexedDB open + getAll"(n) {
      const name = fresh("or");
      const seed = await rawOpen(name);
      await rawPutAll(seed, n);
      seed.close();
      const result = await timed(async () => {
        const db = await rawOpen(name);
        const all = await idbRequest(db.transaction("kv").objectStore("kv").getAll());
        if (all.length !== n) throw new Error(`raw O: ${all.length} of ${n}`);
        db.close();
        return 1;
      });
      await drop(name);
      return result;
    },
  },

  // L: uncontended lock round trips.
  L: {
    n: { full: 2000, smoke: 50 },
    async clientdata(n) {
      const cd = await loadClientData();
      if (!cd || !cd.createLock) return null;
      const lock = cd.createLock(fresh("l"), "bench/lock", {});
      return timed(async () => {
        for (let i = 0; i < n; i++) await lock.withLock(async () => i);
        return n;
      });
    },
    async "raw navigator.locks.request"(n) {
      const name = fresh("lr");
      return timed(async () => {
        for (let i = 0; i < n; i++) await navigator.locks.request(name, async () => i);
        return n;
      });
    },
  },
};

export async function run(caseName, library, mode) {
  const c = cases[caseName];
  return c[library](c.n[mode]);
}

export function describe() {
  return Object.fromEntries(
    Object.entries(cases).map(([name, c]) => [
      name,
      { libraries: Object.keys(c).filter((k) => typeof c[k] === "function"), lowerIsBetter: !!c.lowerIsBetter },
    ]),
  );
}
