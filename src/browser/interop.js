export function toJson(value) {
  let why = null;
  try {
    return JSON.stringify(value, function (_key, x) {
      switch (typeof x) {
        case "undefined": why = "undefined is not JSON"; throw why;
        case "function": why = "a function is not JSON"; throw why;
        case "symbol": why = "a symbol is not JSON"; throw why;
        case "bigint": why = "a BigInt is not JSON"; throw why;
        case "number":
          if (!Number.isFinite(x)) { why = String(x) + " is not JSON"; throw why; }
          break;
        case "object":
          if (x !== null && (ArrayBuffer.isView(x) || x instanceof ArrayBuffer || x instanceof Map || x instanceof Set)) {
            why = "a nested binary value, Map or Set does not round-trip through JSON (store a Uint8Array at the top level)";
            throw why;
          }
      }
      return x;
    });
  } catch (e) {
    return { why: why ?? (e && e.message ? e.message : String(e)) };
  }
}

// What withLock's callback gets, built in one call (not five property crossings).
export function lockGrant(epoch, nonce, lockName) {
  return { epoch, nonce, lockName };
}

export function parseJson(text) {
  try {
    return { value: JSON.parse(text) };
  } catch (e) {
    return { failed: String(e.message || e) };
  }
}

export function asyncIterable(next, ret) {
  return { next, return: ret, [Symbol.asyncIterator]() { return this; } };
}

// An iterable's items as an array, or null when it is not iterable or iterating it throws
// (setMany's entries: a typed error in Rust, not a TypeError thrown through wasm).
export function itemsOf(iterable) {
  try {
    if (iterable == null || typeof iterable[Symbol.iterator] !== "function") return null;
    return Array.from(iterable);
  } catch {
    return null;
  }
}

// An object's own [key, value] pairs, or null when reading them throws (a getter, a proxy).
export function entriesOf(object) {
  try {
    return Object.entries(object);
  } catch {
    return null;
  }
}
