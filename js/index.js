// The package entry: everything wasm-bindgen generates (./clientdata.js), with `init` and
// `initSync` first installing the read path below.
//
// A `get` or `has` that hits never enters wasm: the store keeps one JS Map per plugin of its
// primitive values, changed in the same step as its index by local writes, other tabs' writes
// and sync commits, and emptied on close (src/store/read_cache.rs). A miss (an absent key, an
// object value, which must come back as a fresh copy, an invalid key, a closed store) takes the
// wasm path, which validates, answers and fills the map.
import rawInit, { initSync as rawInitSync, PluginStore } from "./clientdata.js";

export * from "./clientdata.js";

const CACHE = Symbol("clientdata.readCache");
let installed = false;

function install() {
  if (installed) return;
  installed = true;
  const proto = PluginStore.prototype;
  const { get: wasmGet, has: wasmHas, free: wasmFree } = proto;
  const cacheOf = (store) => store[CACHE] ?? (store[CACHE] = store.__readCache());
  Object.defineProperties(proto, {
    get: {
      configurable: true,
      writable: true,
      value: function get(key) {
        const value = cacheOf(this).get(key);
        return value !== undefined ? value : wasmGet.call(this, key);
      },
    },
    has: {
      configurable: true,
      writable: true,
      value: function has(key) {
        return cacheOf(this).has(key) || wasmHas.call(this, key);
      },
    },
    // A freed store forgets its map, so its reads fail in wasm as they would without the entry.
    free: {
      configurable: true,
      writable: true,
      value: function free() {
        this[CACHE] = undefined;
        return wasmFree.call(this);
      },
    },
  });
}

/** Loads the wasm module (see ./clientdata.js); call once before anything else. */
export default function init(moduleOrPath) {
  install();
  return rawInit(moduleOrPath);
}

/** Loads the wasm module synchronously from bytes or a compiled module. */
export function initSync(module) {
  install();
  return rawInitSync(module);
}
