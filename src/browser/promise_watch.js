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
