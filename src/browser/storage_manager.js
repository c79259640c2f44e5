// Persistence is asked for without waiting for the answer: Firefox answers `persist()` with a
// permission prompt, which a headless browser (or a user who ignores it) never settles, and
// opening a store must not hang on it. `persisted()` and `estimate()` never prompt.
export async function storageInfo(askPersist) {
  const s = globalThis.navigator && globalThis.navigator.storage;
  let persisted = false, quota = null, request = null;
  if (!s) return { persisted, quota, request };
  try {
    persisted = s.persisted ? await s.persisted() : false;
  } catch {
    // not persisted
  }
  if (!persisted && askPersist && s.persist) {
    try {
      request = Promise.resolve(s.persist()).then((granted) => granted === true, () => false);
    } catch {
      request = Promise.resolve(false);
    }
  }
  try {
    if (s.estimate) {
      const e = await s.estimate();
      if (typeof e.quota === "number") quota = e.quota;
    }
  } catch {
    // no quota
  }
  return { persisted, quota, request };
}
