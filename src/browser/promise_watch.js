// The JS half of promise_watch.rs: callbacks that pass the watch id along.
export function watchPromise(promise, id, fulfilled, rejected) {
  promise.then(
    (value) => fulfilled(id, value),
    (reason) => rejected(id, reason),
  );
}

// A Web Lock callback: a grant is held until `release` (given to `onLock`) is called; an
// `ifAvailable` miss is `onLock(id, null)`. The promise is made here, not through a Rust closure.
export function lockCallback(id, onLock) {
  return (lock) => {
    if (lock === null) return onLock(id, null);
    let release;
    const held = new Promise((resolve) => (release = resolve));
    onLock(id, release);
    return held;
  };
}

// Two hex digits per byte: the nonce crosses as four 32-bit words spelled here, far cheaper
// than decoding its text from wasm memory (a TextDecoder call, ~5 µs per grant in Chromium).
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));
const hex = (w) => HEX[w >>> 24] + HEX[(w >>> 16) & 255] + HEX[(w >>> 8) & 255] + HEX[w & 255];

// withLock's call of `fn` under a grant: `fn({ epoch, nonce, lockName })`, its outcome (a
// thenable adopted, a throw rejected) passed on as `watchPromise` does. One crossing, where
// building the grant, calling, resolving and watching took four.
export function callWatched(fn, epoch, w0, w1, w2, w3, lockName, id, fulfilled, rejected) {
  let result;
  try {
    const nonce = hex(w0) + hex(w1) + hex(w2) + hex(w3);
    result = Promise.resolve(fn({ epoch, nonce, lockName }));
  } catch (e) {
    result = Promise.reject(e);
  }
  watchPromise(result, id, fulfilled, rejected);
}
