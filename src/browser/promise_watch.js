// The one JS half of promise_watch.rs: a reaction that passes the watch id along.
export function watchPromise(promise, id, fulfilled, rejected) {
  promise.then(
    (value) => fulfilled(id, value),
    (reason) => rejected(id, reason),
  );
}
