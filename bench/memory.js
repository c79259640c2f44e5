// Case M, page side: memory held after opening a store of `n` × 1 KiB records, and wasm memory
// over repeated open/sync/close cycles. run.mjs drives it: it seeds a database from one page,
// then measures in a fresh page (wasm memory never shrinks, so a page that already opened a
// store would hide what the next open costs) and reads the JS heap over the DevTools protocol
// around these calls.
import { VALUE, idbRequest, idbDone, rawOpen, rawPutAll, drop, loadClientData, wasmMemoryBytes } from "/bench/cases.js";

// Records k0..k{n-1} in plugin "bench" (clientdata) or store "kv" (raw), durable on return.
export async function seed(library, name, n) {
  if (library === "clientdata") {
    const cd = await loadClientData();
    const db = await cd.ClientData.open({ name });
    const kv = db.plugin("bench");
    await kv.setMany(Array.from({ length: n }, (_, i) => [`k${i}`, VALUE]));
    await kv.flush();
    await db.close();
  } else {
    const db = await rawOpen(name);
    await rawPutAll(db, n);
    db.close();
  }
}

// What each library holds once open and readable. Kept on window so the collector cannot take
// it before run.mjs reads the heap.
export async function load(library, name, n) {
  if (library === "clientdata") {
    const cd = await loadClientData();
    const db = await cd.ClientData.open({ name });
    if (db.plugin("bench").get(`k${n - 1}`) !== VALUE) throw new Error("clientdata: last record missing");
    window.held = db;
  } else {
    const db = await rawOpen(name);
    const tx = db.transaction("kv", "readonly");
    const [keys, values] = await Promise.all([idbRequest(tx.objectStore("kv").getAllKeys()), idbRequest(tx.objectStore("kv").getAll())]);
    await idbDone(tx);
    db.close();
    const map = new Map();
    for (let i = 0; i < keys.length; i++) map.set(keys[i], values[i]);
    if (map.get(`k${n - 1}`) !== VALUE) throw new Error("raw: last record missing");
    window.held = map;
  }
  return wasmMemoryBytes();
}

// Loads the library (clientdata: the module and its wasm instance) so the baseline includes it.
export async function prepare(library) {
  if (library === "clientdata") await loadClientData();
  return wasmMemoryBytes();
}

// One cycle of open (n records on disk) → sync → close; wasm memory after it. run.mjs runs it
// with a forced collection between cycles and, open → close, without one.
export async function cycle(name, n, server, user) {
  const cd = await loadClientData();
  const db = await cd.ClientData.open(server ? { name, server, token: () => `dev-token-${user}` } : { name });
  if (server) await db.sync();
  if (db.plugin("bench").get(`k${n - 1}`) !== VALUE) throw new Error("cycle: last record missing");
  await db.close();
  return wasmMemoryBytes();
}

export async function cleanup(name) {
  if (window.held && typeof window.held.close === "function") await window.held.close();
  window.held = null;
  await drop(name);
  localStorage.clear();
}
