// A wasi:keyvalue-shaped store over clientdata, so a supervisor can back its
// `wasi:keyvalue/store` shim with it: `open(bucket)` → a bucket of byte values with get, set,
// delete, exists and listKeys(cursor). A bucket is a clientdata plugin namespace (its name must be
// a valid plugin id); every call is synchronous and `set` is durable when it returns.
//
//   import { keyValueStore } from "clientdata/wasi-keyvalue.js";
//   const bucket = keyValueStore(cd).open("my-plugin");
//   bucket.set("k", new TextEncoder().encode("v"));
//   bucket.listKeys(); // { keys: ["k"], cursor: undefined }

/** Keys per `listKeys` page. */
export const LIST_PAGE = 1000;
/** Keys a bucket lists at most (clientdata's `keys()` bound). */
const LIST_MAX = 100_000;

function typed(name, code, message) {
  const error = new TypeError(message);
  error.name = name;
  error.code = code;
  return error;
}

function bytes(value, key) {
  if (value === undefined) return undefined;
  if (!(value instanceof Uint8Array)) {
    throw typed("InvalidValueError", "invalid_value", `key ${JSON.stringify(key)} holds a JSON value, not bytes`);
  }
  return value;
}

const utf8 = new TextEncoder();
/** `a <= b` in code-point order (UTF-8 byte order), the order `keys()` returns. */
function atMost(a, b) {
  const x = utf8.encode(a), y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] < y[i];
  return x.length <= y.length;
}

class Bucket {
  constructor(kv) {
    this.kv = kv;
  }
  /** The bytes of `key`, or `undefined`. */
  get(key) {
    return bytes(this.kv.get(key), key);
  }
  /** Stores `value` (a Uint8Array); durable on return. */
  set(key, value) {
    if (!(value instanceof Uint8Array)) throw typed("InvalidValueError", "invalid_value", "a wasi:keyvalue value must be a Uint8Array");
    this.kv.set(key, value);
  }
  /** Deletes `key` (no error if absent). */
  delete(key) {
    this.kv.delete(key);
  }
  /** Whether `key` holds a value. */
  exists(key) {
    return this.kv.has(key);
  }
  /** One page of keys after `cursor` (code-point order); `cursor` in the answer is where the next page starts, absent at the end. */
  listKeys(cursor) {
    if (cursor !== undefined && typeof cursor !== "string") throw typed("InvalidOptionsError", "invalid_options", "cursor must be a string");
    const all = this.kv.keys({ limit: LIST_MAX });
    let start = 0;
    if (cursor !== undefined) {
      let lo = 0, hi = all.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (atMost(all[mid], cursor)) lo = mid + 1; else hi = mid;
      }
      start = lo;
    }
    const keys = all.slice(start, start + LIST_PAGE);
    const more = start + LIST_PAGE < all.length;
    return { keys, cursor: more ? keys[keys.length - 1] : undefined };
  }
}

/** The wasi:keyvalue `store` interface over an open ClientData. */
export function keyValueStore(cd) {
  return {
    /** Opens bucket `identifier` (a plugin id); throws InvalidPluginIdError for a bad one. */
    open(identifier) {
      return new Bucket(cd.plugin(identifier));
    },
  };
}
