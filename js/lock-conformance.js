// Conformance checks for the DistributedLock contract (swamp's datastore lock shape), runnable
// against any implementation:
//
//   import { runLockConformance } from "clientdata/lock-conformance.js";
//   const passed = await runLockConformance((path, opts) => createLock("mydb", path, opts), { log: console.log });
//
// `createLock(path, options)` must return an object with acquire(), release(), withLock(fn),
// inspect() and forceRelease(nonce); options include ttlMs, retryIntervalMs, maxWaitMs.
// Throws on the first failed check; returns the names of the checks that passed.

function fail(check, message) {
  const error = new Error(`lock conformance: ${check}: ${message}`);
  error.name = "LockConformanceError";
  error.check = check;
  throw error;
}

function isIsoString(value) {
  return typeof value === "string" && !Number.isNaN(Date.parse(value)) &&
    new Date(value).toISOString() === value;
}

export async function runLockConformance(createLock, { log = () => {}, prefix } = {}) {
  const base = prefix ?? `conformance-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  const passed = [];
  const check = async (name, body) => {
    await body(name);
    passed.push(name);
    log(`ok - ${name}`);
  };

  await check("inspect is null when free", async (name) => {
    const lock = createLock(`${base}/free`, {});
    const info = await lock.inspect();
    if (info !== null) fail(name, `expected null, got ${JSON.stringify(info)}`);
  });

  await check("inspect describes the holder", async (name) => {
    const lock = createLock(`${base}/held`, { ttlMs: 5000 });
    await lock.acquire();
    try {
      const info = await lock.inspect();
      if (info === null || typeof info !== "object") fail(name, "expected LockInfo while held");
      for (const field of ["holder", "hostname", "nonce"]) {
        if (typeof info[field] !== "string") fail(name, `${field} must be a string, got ${typeof info[field]}`);
      }
      if (info.nonce.length === 0) fail(name, "nonce must not be empty");
      if (typeof info.pid !== "number") fail(name, `pid must be a number, got ${typeof info.pid}`);
      if (!isIsoString(info.acquiredAt)) fail(name, `acquiredAt must be an ISO-8601 string, got ${info.acquiredAt}`);
      if (info.ttlMs !== 5000) fail(name, `ttlMs must be the configured 5000, got ${info.ttlMs}`);
      const other = createLock(`${base}/held`, { ttlMs: 5000 });
      const seen = await other.inspect();
      if (seen === null || seen.nonce !== info.nonce) fail(name, "another lock object must see the same holder");
    } finally {
      await lock.release();
    }
  });

  await check("release frees and a second release is harmless", async (name) => {
    const lock = createLock(`${base}/release`, {});
    await lock.acquire();
    await lock.release();
    const info = await lock.inspect();
    if (info !== null) fail(name, `inspect after release: ${JSON.stringify(info)}`);
    await lock.release();
    const again = createLock(`${base}/release`, { maxWaitMs: 1000 });
    await again.acquire();
    await again.release();
  });

  await check("withLock returns the callback's value", async (name) => {
    const lock = createLock(`${base}/with`, {});
    let inside = null;
    const value = await lock.withLock(async () => {
      inside = await lock.inspect();
      return { answer: 42 };
    });
    if (!value || value.answer !== 42) fail(name, `got ${JSON.stringify(value)}`);
    if (inside === null) fail(name, "inspect inside withLock must show a holder");
    if ((await lock.inspect()) !== null) fail(name, "not released after withLock");
  });

  await check("withLock releases when the callback throws", async (name) => {
    const lock = createLock(`${base}/throws`, {});
    const boom = new Error("boom");
    let caught = null;
    try {
      await lock.withLock(async () => { throw boom; });
    } catch (e) {
      caught = e;
    }
    if (caught !== boom) fail(name, `expected the callback's error, got ${caught}`);
    if ((await lock.inspect()) !== null) fail(name, "still held after the callback threw");
    let syncCaught = null;
    try {
      await lock.withLock(() => { throw boom; });
    } catch (e) {
      syncCaught = e;
    }
    if (syncCaught !== boom) fail(name, `synchronous throw: got ${syncCaught}`);
    if ((await lock.inspect()) !== null) fail(name, "still held after a synchronous throw");
  });

  await check("forceRelease with the right nonce frees the lock", async (name) => {
    const holder = createLock(`${base}/force`, {});
    await holder.acquire();
    const admin = createLock(`${base}/force`, {});
    const info = await admin.inspect();
    if (info === null) fail(name, "inspect must show the holder");
    const freed = await admin.forceRelease(info.nonce);
    if (freed !== true) fail(name, `expected true, got ${freed}`);
    const after = await admin.inspect();
    if (after !== null) fail(name, `still held after forceRelease: ${JSON.stringify(after)}`);
    await holder.release();
  });

  await check("forceRelease with a wrong nonce changes nothing", async (name) => {
    const holder = createLock(`${base}/wrong`, {});
    await holder.acquire();
    try {
      const admin = createLock(`${base}/wrong`, {});
      const before = await admin.inspect();
      const freed = await admin.forceRelease("not-the-nonce");
      if (freed !== false) fail(name, `expected false, got ${freed}`);
      const after = await admin.inspect();
      if (after === null || after.nonce !== before.nonce) fail(name, "the holder must keep the lock");
    } finally {
      await holder.release();
    }
  });

  await check("maxWaitMs is honoured within 100 ms", async (name) => {
    const holder = createLock(`${base}/wait`, {});
    await holder.acquire();
    try {
      const maxWaitMs = 300;
      const waiter = createLock(`${base}/wait`, { maxWaitMs, retryIntervalMs: 50 });
      const started = performance.now();
      let caught = null;
      try {
        await waiter.acquire();
      } catch (e) {
        caught = e;
      }
      const waited = performance.now() - started;
      if (caught === null) fail(name, "acquire must fail while another holder keeps the lock");
      if (waited < maxWaitMs - 5 || waited > maxWaitMs + 100) {
        fail(name, `gave up after ${waited.toFixed(1)} ms, expected ${maxWaitMs}..${maxWaitMs + 100}`);
      }
    } finally {
      await holder.release();
    }
  });

  return passed;
}
