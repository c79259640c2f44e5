export function txDone(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.cdFenceNewer !== undefined
      ? { name: "LockLostError", message: "a newer lock epoch exists", newer: tx.cdFenceNewer }
      : tx.error || new DOMException("transaction aborted", "AbortError"));
  });
}

export function requestDone(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

// HLC text (core::hlc): 12 hex wall ms, 4 hex counter, 16 hex node.
const STAMP = /^[0-9a-f]{12}-[0-9a-f]{4}-[0-9a-f]{16}$/;

export function putRows(store, rows, ifNewer) {
  if (!ifNewer || rows.length === 0) {
    for (const row of rows) store.put(row);
    return;
  }
  // Put-if-newer without a get per row: one getAllKeys (keys only, no values) over the batch's
  // key span finds the keys already stored; the rest are put blindly (nothing else can write
  // the store while this transaction runs), only stored keys are read and compared.
  // IndexedDB orders [plugin, key] arrays of strings by UTF-16 code units, as `<` does.
  const before = (a, b) => a.p < b.p || (a.p === b.p && a.k < b.k);
  let lo = rows[0], hi = rows[0];
  for (const row of rows) {
    if (before(row, lo)) lo = row;
    if (before(hi, row)) hi = row;
  }
  const keys = store.getAllKeys(IDBKeyRange.bound([lo.p, lo.k], [hi.p, hi.k]));
  keys.onsuccess = () => {
    // Nothing stored in the span (a first sync, new keys): every row goes in as it is.
    if (keys.result.length === 0) {
      for (const row of rows) store.put(row);
      return;
    }
    const batch = new Map();
    for (const row of rows) {
      let ks = batch.get(row.p);
      if (!ks) batch.set(row.p, (ks = new Set()));
      ks.add(row.k);
    }
    const stored = new Map();
    for (const [p, k] of keys.result) {
      if (!batch.get(p)?.has(k)) continue;
      let ks = stored.get(p);
      if (!ks) stored.set(p, (ks = new Set()));
      ks.add(k);
    }
    for (const row of rows) {
      if (!stored.get(row.p)?.has(row.k)) {
        store.put(row);
        continue;
      }
      const get = store.get([row.p, row.k]);
      get.onsuccess = () => {
        const cur = get.result;
        // A stored row without a valid stamp is corrupt (quarantined at open): any write
        // replaces it, or a stamp like "zzz" would outrank every real one forever.
        if (!cur || !STAMP.test(cur.h) || cur.h < row.h) store.put(row);
      };
    }
  };
}

export function fenceEpoch(tx, epochs, lockName, epoch) {
  const get = epochs.get(lockName);
  get.onsuccess = () => {
    const stored = typeof get.result === "number" ? get.result : 0;
    if (stored > epoch) {
      tx.cdFenceNewer = stored;
      tx.abort();
    } else if (stored < epoch) {
      epochs.put(epoch, lockName);
    }
  };
}

export function recordRow(p, k, h, v, b) {
  const row = { p, k, h };
  if (v !== undefined) row.v = v;
  if (b !== undefined) row.b = b;
  return row;
}
