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
        // At an equal stamp (the same write), content replaces a reference to it: hydration
        // (core::record::Record::replaces).
        const hydrates = cur && cur.h === row.h && typeof cur.r === "string" && row.r === undefined
          && (row.v !== undefined || row.b !== undefined);
        if (!cur || !STAMP.test(cur.h) || cur.h < row.h || hydrates) store.put(row);
      };
    }
  };
}

// Stores a big commit's rows as one `packs` row (schema.rs: IndexedDB's cost is per row). No
// compare with what is stored: opening lets the index's last-write-wins pick between versions.
// The key is made here (time, then random), so the put needs no await for a generated one.
export function putPack(store, rows) {
  const key = `${Date.now().toString(36).padStart(9, "0")}-${Math.random().toString(36).slice(2)}`;
  store.put({ rows }, key);
}

// Removes versions of [plugin, key, stamp] at or below that stamp (a newer write of the key,
// from this tab or another, stays): collected tombstones and a full resync's deletions. An
// older version is superseded by the removed one, so it goes too: otherwise it would come back
// at the next open (a row or a pack may hold one). Packs are read whole in this transaction and
// rewritten without those versions (deleted when nothing is left): removals are rare, and
// reading the packs here, not an in-memory map of who holds what, also sees other tabs' packs.
export function deleteRows(records, packs, rows) {
  const gone = new Map();
  for (const [p, k, h] of rows) {
    let ks = gone.get(p);
    if (!ks) gone.set(p, (ks = new Map()));
    if (!(ks.get(k) >= h)) ks.set(k, h);
    const get = records.get([p, k]);
    get.onsuccess = () => {
      const cur = get.result;
      if (cur && STAMP.test(cur.h) && cur.h <= h) records.delete([p, k]);
    };
  }
  const removed = (row) => {
    const h = gone.get(row?.p)?.get(row?.k);
    return h !== undefined && typeof row.h === "string" && STAMP.test(row.h) && row.h <= h;
  };
  const cursor = packs.openCursor();
  cursor.onsuccess = () => {
    const at = cursor.result;
    if (!at) return;
    const entries = at.value?.rows;
    if (Array.isArray(entries) && entries.some(removed)) {
      const kept = entries.filter((row) => !removed(row));
      if (kept.length === 0) at.delete();
      else at.update({ ...at.value, rows: kept });
    }
    at.continue();
  };
}

// Compaction (schema.rs, packs): rewrites the packs whose live share fell under half as one new
// pack of their live entries, in one transaction. Live is decided here from what IndexedDB
// holds in this transaction, never from memory: a version is dropped only when a version that
// replaces it (a greater stamp, or content at its stamp) is stored too, so a newer version
// still only in a journal never costs the only durable copy of the older one. Entries that do
// not look like records (quarantined at open) are kept as they are.
export function compactPacks(records, packs) {
  const rank = (row) => (row.r === undefined && (row.v !== undefined || row.b !== undefined) ? 1 : 0);
  const sane = (row) => typeof row?.p === "string" && typeof row.k === "string"
    && typeof row.h === "string" && STAMP.test(row.h);
  const best = new Map();
  const consider = (row) => {
    if (!sane(row)) return;
    let ks = best.get(row.p);
    if (!ks) best.set(row.p, (ks = new Map()));
    const cur = ks.get(row.k);
    if (!cur || cur.h < row.h || (cur.h === row.h && rank(cur) < rank(row))) ks.set(row.k, row);
  };
  const live = (row) => {
    if (!sane(row)) return true;
    const win = best.get(row.p).get(row.k);
    return win.h === row.h && rank(win) === rank(row);
  };
  const rows = records.getAll();
  const all = packs.getAll();
  const keys = packs.getAllKeys();
  keys.onsuccess = () => {
    for (const row of rows.result) consider(row);
    for (const pack of all.result) if (Array.isArray(pack?.rows)) pack.rows.forEach(consider);
    const carried = [];
    let left = 0; // entries of the packs kept as they are
    const once = new Map(); // p -> keys carried (two packs may hold copies of one winner)
    all.result.forEach((pack, i) => {
      if (!Array.isArray(pack?.rows)) return;
      const kept = pack.rows.filter(live);
      if (kept.length * 2 >= pack.rows.length) {
        left += pack.rows.length;
        return;
      }
      packs.delete(keys.result[i]);
      for (const row of kept) {
        if (sane(row)) {
          let ks = once.get(row.p);
          if (!ks) once.set(row.p, (ks = new Set()));
          if (ks.has(row.k)) continue;
          ks.add(row.k);
        }
        carried.push(row);
      }
    });
    if (carried.length > 0) putPack(packs, carried);
    // What the packs hold now, for the engine's count (indexeddb.rs, PackCount).
    packs.transaction.cdPacked = left + carried.length;
  };
}

// This context's lock grants by lock name, then by the epoch a grant was given, for the epoch
// rule (src/lock/rules.rs `fence_grant`, which this mirrors): `{ floor, claimed, lost }`. A
// grant has no stored epoch until its first fenced write claims one inside that write's
// transaction. Maintained by src/lock (grantOpen / grantClaimed / grantClose) at every grant:
// two maps, so no key string is built per grant.
const grants = new Map();

const grantOf = (lockName, epoch) => grants.get(lockName)?.get(epoch);

export function grantOpen(lockName, epoch, floor) {
  let byEpoch = grants.get(lockName);
  if (!byEpoch) grants.set(lockName, (byEpoch = new Map()));
  byEpoch.set(epoch, { floor, claimed: 0, lost: false });
}

export function grantClaimed(lockName, epoch, claimed) {
  const grant = grantOf(lockName, epoch);
  if (grant && !grant.lost) grant.claimed = claimed;
}

// A released grant is forgotten (its epoch then follows the plain rule); one taken away first
// stays, refused for good.
export function grantClose(lockName, epoch, lost) {
  const grant = grantOf(lockName, epoch);
  if (grant && lost) grant.lost = true;
  else if (grant) grants.get(lockName).delete(epoch);
}

// [state, floor, claimed]: state 0 unknown here, 1 unclaimed, 2 claimed, 3 lost.
export function grantState(lockName, epoch) {
  const grant = grantOf(lockName, epoch);
  if (!grant) return [0, 0, 0];
  return [grant.lost ? 3 : grant.claimed ? 2 : 1, grant.floor, grant.claimed];
}

// The key of a lock's fence in `epochs` (the epoch its last steal stored): an array, so it
// never equals a lock name.
export function fenceKey(lockName) {
  return [lockName, "fence"];
}

export function fenceEpoch(tx, epochs, lockName, epoch) {
  const grant = grantOf(lockName, epoch);
  const get = epochs.get(lockName);
  // Only a first write needs the fence; requests of one transaction complete in order.
  const fence = grant && !grant.lost && !grant.claimed ? epochs.get(fenceKey(lockName)) : null;
  const decide = () => {
    const stored = typeof get.result === "number" ? get.result : 0;
    const fenced = fence && typeof fence.result === "number" ? fence.result : 0;
    const stale = (newer) => {
      tx.cdFenceNewer = newer;
      tx.abort();
    };
    if (!grant) {
      if (stored > epoch) stale(stored);
      else if (stored < epoch) epochs.put(epoch, lockName);
    } else if (grant.lost) {
      stale(Math.max(stored, fenced));
    } else if (grant.claimed) {
      if (stored > grant.claimed) stale(stored);
      else if (stored < grant.claimed) epochs.put(grant.claimed, lockName);
    } else if (fenced > grant.floor) {
      stale(Math.max(stored, fenced));
    } else {
      grant.claimed = Math.max(stored + 1, epoch);
      epochs.put(grant.claimed, lockName);
    }
  };
  (fence ?? get).onsuccess = decide;
}

export function recordRow(p, k, h, v, b, r) {
  const row = { p, k, h };
  if (v !== undefined) row.v = v;
  if (b !== undefined) row.b = b;
  if (r !== undefined) row.r = r;
  return row;
}

// Opens (creating or migrating) database `name` at `version` (src/store/schema.rs). `migrate(db,
// upgradeTx, old, new)` runs inside `upgradeneeded` and returns an error text to abort the
// upgrade (nothing half-built is committed). `blocked` and `changed` are the names of the global
// events dispatched when an older connection blocks the upgrade, and when this connection closes
// itself on another's `versionchange`. Throws where there is no `indexedDB`; the promise rejects
// with the open's error (also one `open` throws), or with "migration failed: ..." text.
export function openDatabase(name, version, blocked, changed, migrate) {
  const factory = globalThis.indexedDB;
  if (!factory) throw new Error("no indexedDB in this global scope");
  const fire = (type, detail) => {
    try {
      globalThis.dispatchEvent(new globalThis.CustomEvent(type, { detail }));
    } catch {
      // no global events here, or a throwing listener: opening goes on
    }
  };
  return new Promise((resolve, reject) => {
    const request = factory.open(name, version); // a throw here rejects
    let failed;
    request.onupgradeneeded = (event) => {
      failed = migrate(request.result, request.transaction, event.oldVersion, event.newVersion ?? version);
      if (failed !== undefined) request.transaction.abort();
    };
    request.onblocked = (event) => fire(blocked, { name, oldVersion: event.oldVersion, newVersion: version });
    request.onsuccess = () => {
      const db = request.result;
      // Close so the newer tab's upgrade is not blocked; the app's cue to reload.
      db.onversionchange = () => {
        db.close();
        fire(changed, { name });
      };
      resolve(db);
    };
    request.onerror = () => reject(failed !== undefined ? `migration failed: ${failed}` : request.error);
  });
}
