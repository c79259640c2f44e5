// Benchmark cases, run inside Chromium. Each (case, library) pair gets a fresh database and
// returns { ms, ops } for the timed part only, or null when the library lacks the feature.
import * as idbKeyval from "/bench/node_modules/idb-keyval/dist/index.js";
import { createStore as createTinyBase } from "/bench/node_modules/tinybase/index.js";
// Self-contained ESM bundles (no bare imports), so no import map is needed.
import { createMergeableStore } from "/bench/node_modules/tinybase/mergeable-store/index.js";
import { createWsSynchronizer } from "/bench/node_modules/tinybase/synchronizers/synchronizer-ws-client/index.js";
import { createIndexedDbPersister } from "/bench/node_modules/tinybase/persisters/persister-indexed-db/index.js";

// Started by run.mjs and passed in the query string: the reference sync server (absent when its
// binary is not built) and the TinyBase WsServer.
const PARAMS = new URLSearchParams(location.search);
const SYNC_SERVER = PARAMS.get("server");
const TINYBASE_WS = PARAMS.get("tinybase");

let clientdata = null;
let wasmExports = null;
export async function loadClientData() {
  if (clientdata === null) {
    try {
      const mod = await import("/pkg/index.js");
      wasmExports = await mod.default();
      clientdata = mod;
    } catch (e) {
      clientdata = { error: String(e) };
    }
  }
  return clientdata.ClientData ? clientdata : null;
}
// Size of clientdata's wasm memory (0 before the module loads); it grows and never shrinks.
export const wasmMemoryBytes = () => wasmExports?.memory?.buffer.byteLength ?? 0;

export const VALUE = Array.from({ length: 1024 }, (_, i) => String.fromCharCode(97 + ((i * 7) % 26))).join("");
const fresh = (tag) => `bench-${tag}-${Date.now()}-${Math.random().toString(36).slice(2)}`;

export function idbRequest(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}
export function idbDone(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = tx.onabort = () => reject(tx.error);
  });
}
export async function rawOpen(name) {
  const request = indexedDB.open(name, 1);
  request.onupgradeneeded = () => request.result.createObjectStore("kv");
  return idbRequest(request);
}
export async function rawPutAll(db, count) {
  const tx = db.transaction("kv", "readwrite");
  const store = tx.objectStore("kv");
  for (let i = 0; i < count; i++) store.put(VALUE, `k${i}`);
  await idbDone(tx);
}
// Deletes a database; a peer that keeps its connection open (idb-keyval does) would block the
// delete forever, so a blocked delete completes later on its own and we move on.
export function drop(name) {
  return new Promise((resolve) => {
    const request = indexedDB.deleteDatabase(name);
    request.onsuccess = request.onerror = request.onblocked = () => resolve();
  });
}
// With `profile` set (run.mjs --profile), the timed part of each run is a console profile, which
// run.mjs collects over the DevTools protocol.
let profile = false;
async function timed(fn) {
  if (profile) console.profile("timed");
  const start = performance.now();
  try {
    const ops = await fn();
    return { ms: performance.now() - start, ops };
  } finally {
    if (profile) console.profileEnd("timed");
  }
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

// Sync helpers. Each run uses a fresh user, so runs never see each other's records. Devices are
// databases of their own names, so they name one server dataset to share it.
async function openDevice(cd, name, user) {
  return cd.ClientData.open({ name, server: SYNC_SERVER, token: () => `dev-token-${user}`, sync: { dataset: "bench" } });
}
// Device A of `user` (or `devices` devices, each its share) writes records k0..k{n-1} in plugin
// "bench" and pushes them; then it is closed and its database deleted (the records live on the
// server).
async function seedUser(cd, user, n, devices = 1) {
  for (let d = 0; d < devices; d++) {
    const name = fresh("seed");
    const a = await openDevice(cd, name, user);
    const kv = a.plugin("bench");
    const entries = [];
    for (let i = d; i < n; i += devices) entries.push([`k${i}`, VALUE]);
    if (typeof kv.setMany === "function") await kv.setMany(entries);
    else {
      for (const [k, v] of entries) kv.set(k, v);
      await kv.flush();
    }
    const pushed = await a.sync();
    if (pushed.shipped !== entries.length || pushed.hasMore) throw new Error(`clientdata seed: shipped ${pushed.shipped} of ${entries.length}, hasMore ${pushed.hasMore}`);
    await closeClientData(a, name);
  }
}
function assertAllKeys(db, n, label) {
  const kv = db.plugin("bench");
  const keys = kv.keys({ limit: 100000 });
  if (keys.length !== n) throw new Error(`${label}: ${keys.length} keys of ${n}`);
  if (kv.get(`k${n - 1}`) !== VALUE) throw new Error(`${label}: k${n - 1} wrong`);
}
// Runs `fn` with window.fetch wrapped, recording each sync request's body size, the response's
// size and its Server-Timing total (when the server sends one and CORS exposes it).
async function withFetchLog(fn) {
  const original = window.fetch;
  const log = [];
  window.fetch = async (input, init) => {
    const url = typeof input === "string" ? input : input.url;
    const entry = { url, body: null, requestBytes: 0, responseBytes: 0, httpMs: 0, serverMs: null, done: null };
    const body = init?.body ?? (input instanceof Request ? await input.clone().text() : undefined);
    if (typeof body === "string") {
      entry.body = body;
      entry.requestBytes = new TextEncoder().encode(body).length;
    } else if (body?.byteLength !== undefined) entry.requestBytes = body.byteLength;
    log.push(entry);
    const start = performance.now();
    const res = await original(input, init);
    const timing = res.headers.get("server-timing");
    if (timing) entry.serverMs = [...timing.matchAll(/dur=([\d.]+)/g)].reduce((t, m) => t + Number(m[1]), 0);
    // Measured off the timed path: the caller awaits `done` after the round.
    entry.done = res
      .clone()
      .arrayBuffer()
      .then((b) => {
        entry.responseBytes = b.byteLength;
        entry.httpMs = performance.now() - start;
      })
      .catch(() => {});
    return res;
  };
  try {
    const value = await fn();
    return { value, log: log.filter((e) => e.url.endsWith("/sync/exchange")) };
  } finally {
    window.fetch = original;
  }
}
// A user with n records from `devices` devices; a fresh device B pulls them all; then one timed
// no-change round of B. Returns its time, what went over the wire, and how many nodes the
// request's `seen` lists (B's own node included: it lists itself although it wrote nothing).
async function noChangeRound(cd, n, devices = 1) {
  const user = fresh("user-n");
  await seedUser(cd, user, n, devices);
  const name = fresh("n-b");
  const b = await openDevice(cd, name, user);
  const pulled = await b.sync();
  if (pulled.applied !== n) throw new Error(`clientdata N: pulled ${pulled.applied} of ${n}`);
  assertAllKeys(b, n, "clientdata N");
  let result;
  const { log } = await withFetchLog(async () => {
    result = await timed(async () => {
      const r = await b.exchange();
      if (r.applied !== 0 || r.shipped !== 0 || r.hasMore) throw new Error(`clientdata N: no-change round moved ${JSON.stringify(r)}`);
      return 1;
    });
  });
  await closeClientData(b, name);
  if (log.length !== 1) throw new Error(`clientdata N: ${log.length} exchange requests in one round`);
  await log[0].done;
  const seen = JSON.parse(log[0].body).seen ?? {};
  const nodes = new Set(Object.values(seen).flatMap((perNode) => Object.keys(perNode))).size;
  return { ...result, ...log[0], nodes };
}
// Resolves once `store` holds n values.
function valuesReach(store, n) {
  return new Promise((resolve) => {
    const check = () => {
      if (store.getValueIds().length >= n) {
        store.delListener(id);
        resolve();
      }
    };
    const id = store.addValueIdsListener(check);
    check();
  });
}
// Request timeout of the page's TinyBase synchronizers: the default (1 s) is shorter than the
// answer to a 10,000-value diff takes, and a timed-out request silently skips the pull.
const TINYBASE_TIMEOUT_S = 30;
function openSocket(path) {
  return new WebSocket(`${TINYBASE_WS}/${path}`);
}

// S's raw floor peer: its name in the table, and clientdata's default page size
// (src/sync/config.rs DEFAULT_PAGE_LIMIT), so both pull the same pages.
// The sync protocol version the raw floor speaks (docs/PROTOCOL.md, "Versioning").
const PROTOCOL_VERSION = 2;
const FLOOR = "raw floor: fetch + JSON.parse + one IndexedDB transaction per page";
const FLOOR_PAGE = 1000;
const PACKED_FLOOR = "raw floor, each page stored as one row (a packed shape)";
// W2's packed peer: values to a row.
const PACK = 1000;
const PACKED_W2 = "raw IndexedDB, one transaction, 1,000 values to a row (a packed shape)";
// docs/PROTOCOL.md invariant 4: after a page cut at h (its highest HLC), seen[n] rises to
// min(coverage[n], h); after the last page, to coverage[n]. HLC strings compare as text.
function advanceSeen(seen, page) {
  const last = page.records.length ? page.records[page.records.length - 1].hlc : null;
  for (const [plugin, nodes] of Object.entries(page.coverage ?? {})) {
    const mine = (seen[plugin] ??= {});
    for (const [node, covered] of Object.entries(nodes)) {
      const upTo = page.hasMore && last !== null && last < covered ? last : covered;
      if (!(mine[node] >= upTo)) mine[node] = upTo;
    }
  }
}

// End-to-end encryption (issue 20): the same S and W1 measurements with `encryption` on, shown
// as peer rows beside clientdata's own (the ratio is the cost of sealing). One non-extractable
// AES-GCM key per page, shared by its devices as a user's devices would share it.
let benchKey;
async function sealedDevice(cd, name, user) {
  benchKey ??= await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  return cd.ClientData.open({ name, server: SYNC_SERVER, token: () => `dev-token-${user}`, sync: { dataset: "bench-sealed" }, encryption: { key: benchKey } });
}
// W1 encrypted: set() does not seal (a round does), so this is W1 on a store opened with a key
// (it should match W1); the push of those n records, sealed, is checked after the timing.
async function sealedW1(n) {
  const cd = await loadClientData();
  if (!cd || !SYNC_SERVER) return null;
  const name = fresh("w1e");
  const db = await sealedDevice(cd, name, fresh("user-w1e"));
  const kv = db.plugin("bench");
  const result = await timed(() => {
    for (let i = 0; i < n; i++) kv.set(`k${i}`, VALUE);
    return n;
  });
  await kv.flush();
  const pushed = await db.sync();
  if (pushed.shipped !== n) throw new Error(`clientdata W1 encrypted: shipped ${pushed.shipped} of ${n}`);
  await closeClientData(db, name);
  return result;
}
// S encrypted: the cold pull of n sealed records (each opened and checked before it is applied).
async function sealedS(n) {
  const cd = await loadClientData();
  if (!cd || !SYNC_SERVER) return null;
  const user = fresh("user-se");
  const seedName = fresh("seed-e");
  const a = await sealedDevice(cd, seedName, user);
  await a.plugin("bench").setMany(Array.from({ length: n }, (_, i) => [`k${i}`, VALUE]));
  const pushed = await a.sync();
  if (pushed.shipped !== n || pushed.hasMore) throw new Error(`clientdata S encrypted seed: shipped ${pushed.shipped} of ${n}`);
  await closeClientData(a, seedName);
  const name = fresh("se-b");
  let b;
  const result = await timed(async () => {
    b = await sealedDevice(cd, name, user);
    const pulled = await b.sync();
    if (pulled.applied !== n || pulled.hasMore) throw new Error(`clientdata S encrypted: pulled ${pulled.applied} of ${n}, hasMore ${pulled.hasMore}`);
    return n;
  });
  assertAllKeys(b, n, "clientdata S encrypted");
  await closeClientData(b, name);
  return result;
}

// S's raw floor (issue 17): the same pages of the same user's records from the same server
// (clientdata's page size, `seen` advanced as the protocol's invariant 4 says), each read with
// JSON.parse and written with its watermarks in one IndexedDB transaction: a row per record, or
// with `packed` the page's records as one row. No checks, no merge, no read cache.
async function rawFloor(n, packed) {
  const cd = await loadClientData();
  if (!cd || !SYNC_SERVER) return null;
  const user = fresh("user-sf");
  await seedUser(cd, user, n);
  const name = fresh("s-floor");
  let pulled = 0;
  const result = await timed(async () => {
    const db = await rawOpen(name);
    const node = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
    const seen = {};
    for (let more = true; more; ) {
      const res = await fetch(`${SYNC_SERVER}/sync/exchange`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer dev-token-${user}` },
        body: JSON.stringify({ version: PROTOCOL_VERSION, node, seen, push: [], limit: FLOOR_PAGE, dataset: "bench" }),
      });
      if (!res.ok) throw new Error(`raw floor S: HTTP ${res.status} ${await res.text()}`);
      const page = JSON.parse(await res.text());
      advanceSeen(seen, page);
      const tx = db.transaction("kv", "readwrite");
      const store = tx.objectStore("kv");
      if (packed) store.put(page.records, `page${pulled}`);
      else for (const r of page.records) store.put(r, `${r.plugin}\u0000${r.key}`);
      store.put(seen, "\u0000seen");
      await idbDone(tx);
      pulled += page.records.length;
      more = page.hasMore;
    }
    db.close();
    return n;
  });
  if (pulled !== n) throw new Error(`raw floor S: pulled ${pulled} of ${n}`);
  await drop(name);
  return result;
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
      // Each set() is durable when it returns. timed() awaits the loop's result, so the commit
      // task it schedules (rows, IndexedDB puts, journal cleanup, the cross-tab post) runs inside
      // the time too: a loop of writes pays for it right afterwards either way.
      const result = await timed(() => {
        for (let i = 0; i < n; i++) kv.set(`k${i}`, VALUE);
        return n;
      });
      await kv.flush();
      await closeClientData(db, name);
      return result;
    },
    "clientdata, encrypted": sealedW1,
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
    // What a packed storage shape would pay (no goal; the next design change in RESULTS.md):
    // the same values in one transaction, 1,000 to a row.
    async [PACKED_W2](n) {
      const name = fresh("w2p");
      const db = await rawOpen(name);
      const result = await timed(async () => {
        const tx = db.transaction("kv", "readwrite");
        const store = tx.objectStore("kv");
        for (let i = 0; i < n; i += PACK) {
          store.put(Array.from({ length: Math.min(PACK, n - i) }, (_, j) => [`k${i + j}`, VALUE]), `pack${i}`);
        }
        await idbDone(tx);
        return n;
      });
      db.close();
      await drop(name);
      return result;
    },
  },

  // R: synchronous reads of 1,000 keys, cycled. Two million reads a sample: at 100k a sample
  // took ~2 ms and timed the JIT's tier-up more than the reads (0.65x-2.33x run to run).
  R: {
    n: { full: 2000000, smoke: 2000 },
    async clientdata(n) {
      const name = fresh("r");
      const db = await openClientData(name);
      if (!db) return null;
      const kv = db.plugin("bench");
      const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`);
      for (const k of keys) kv.set(k, VALUE);
      // The seeding writes' commit would otherwise run inside the timed part (timed() awaits).
      await kv.flush();
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
    // The design clientdata had before leases were published on demand (issue 17): the same,
    // plus one localStorage write of a lease-sized JSON per grant. Kept as a reference row:
    // clientdata now writes a lease only when another tab asks for it.
    async "raw navigator.locks.request + one lease setItem"(n) {
      const name = fresh("ls");
      const key = `bench:${name}:lease`;
      const lease = (i) => JSON.stringify({ holder: "tab-1", hostname: location.hostname, pid: 1, acquiredAtMs: Date.now(), ttlMs: 30000, nonce: `nonce-${i}`, path: "bench/lock", epoch: i });
      const result = await timed(async () => {
        for (let i = 0; i < n; i++) await navigator.locks.request(name, async () => localStorage.setItem(key, lease(i)));
        return n;
      });
      localStorage.removeItem(key);
      return result;
    },
  },

  // S: cold pull of n records x 1 KiB from a sync server on loopback into IndexedDB, on a fresh
  // device of a user whose records another device pushed (lower is better).
  S: {
    n: { full: 10000, smoke: 200 },
    lowerIsBetter: true,
    async clientdata(n) {
      const cd = await loadClientData();
      if (!cd || !SYNC_SERVER) return null;
      const user = fresh("user-s");
      await seedUser(cd, user, n);
      const name = fresh("s-b");
      let b;
      const result = await timed(async () => {
        b = await openDevice(cd, name, user);
        const pulled = await b.sync(); // resolves after every round is committed to IndexedDB
        if (pulled.applied !== n || pulled.hasMore) throw new Error(`clientdata S: pulled ${pulled.applied} of ${n}, hasMore ${pulled.hasMore}`);
        return n;
      });
      assertAllKeys(b, n, "clientdata S");
      await closeClientData(b, name);
      return result;
    },
    "clientdata, encrypted": sealedS,
    async "TinyBase MergeableStore over WebSocket + IndexedDB save"(n) {
      const path = fresh("tb-s");
      // A silent socket keeps the server's path (and its MergeableStore) loaded throughout: the
      // WsServer unloads a path when its last client leaves, and the first client of an unloaded
      // path waits out the server's request timeout (1 s) while the path starts (the server-side
      // synchronizer asks the clients for their hashes and buffers their answers until the path
      // is ready). Timing that stall would not measure TinyBase's pull.
      const keeper = openSocket(path);
      await new Promise((resolve, reject) => {
        keeper.onopen = resolve;
        keeper.onerror = () => reject(new Error("TinyBase S: WsServer unreachable"));
      });
      // Seed: an empty store syncs, then writes n values in one transaction, which its
      // synchronizer pushes as one ContentDiff message (no request, so no request timeout).
      // Wait until the server has saved them all, then disconnect it.
      const seed = createMergeableStore();
      const seedSync = await createWsSynchronizer(seed, openSocket(path), TINYBASE_TIMEOUT_S);
      await seedSync.startSync();
      seed.transaction(() => {
        for (let i = 0; i < n; i++) seed.setValue(`k${i}`, VALUE);
      });
      for (let tries = 0; ; tries++) {
        const { count } = await (await fetch(`/tinybase-count/${path}`)).json();
        if (count === n) break;
        if (tries > 600) throw new Error(`TinyBase S: server saved ${count} of ${n} values`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await seedSync.destroy();
      const dbName = fresh("tb-s-idb");
      let store, sync, persister;
      const result = await timed(async () => {
        store = createMergeableStore();
        const all = valuesReach(store, n);
        sync = await createWsSynchronizer(store, openSocket(path), TINYBASE_TIMEOUT_S);
        await sync.startSync();
        await all;
        persister = createIndexedDbPersister(store, dbName);
        await persister.save();
        return n;
      });
      if (store.getValueIds().length !== n || store.getValue(`k${n - 1}`) !== VALUE) throw new Error("TinyBase S: values wrong");
      await sync.destroy();
      await persister.destroy();
      keeper.close();
      await drop(dbName);
      return result;
    },
    // The floor any client of this server pays (see rawFloor).
    [FLOOR]: (n) => rawFloor(n, false),
    // The same floor with each page stored as one row (no goal; the next design change in
    // RESULTS.md): what S would cost if the store kept pulled pages packed.
    [PACKED_FLOOR]: (n) => rawFloor(n, true),
  },

  // N: one no-change round (ops = 1) of a device that has pulled everything: n records from one
  // writer device (timed). Clientdata only. Also reports the request body, which should grow
  // with the number of nodes (entries in `seen`), not with the number of records: after 200
  // records from one device, after n from one device, after 200 from two devices.
  N: {
    n: { full: 10000, smoke: 200 },
    lowerIsBetter: true,
    async clientdata(n) {
      const cd = await loadClientData();
      if (!cd || !SYNC_SERVER) return null;
      const big = await noChangeRound(cd, n);
      const small = n === 200 ? big : await noChangeRound(cd, 200);
      const twoNodes = await noChangeRound(cd, 200, 2);
      const label = (r, records, devices) => `request bytes @${records.toLocaleString("en-US")} records from ${devices} device${devices === 1 ? "" : "s"} (${r.nodes} nodes in seen)`;
      const extra = {
        [label(small, 200, 1)]: small.requestBytes,
        [label(big, n, 1)]: big.requestBytes,
        [label(twoNodes, 200, 2)]: twoNodes.requestBytes,
        "response bytes": big.responseBytes,
        "HTTP round trip ms": big.httpMs,
      };
      if (big.serverMs !== null) extra["server ms"] = big.serverMs;
      return { ms: big.ms, ops: big.ops, extra };
    },
  },
};

export async function run(caseName, library, mode, profiled = false) {
  const c = cases[caseName];
  profile = profiled;
  try {
    return await c[library](c.n[mode]);
  } finally {
    profile = false;
  }
}

export function describe() {
  return Object.fromEntries(
    Object.entries(cases).map(([name, c]) => [
      name,
      { libraries: Object.keys(c).filter((k) => typeof c[k] === "function"), lowerIsBetter: !!c.lowerIsBetter },
    ]),
  );
}
