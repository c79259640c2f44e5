export async function storageInfo(askPersist) {
  const s = globalThis.navigator && globalThis.navigator.storage;
  let persisted = false, quota = null;
  if (!s) return { persisted, quota };
  try {
    persisted = s.persisted ? await s.persisted() : false;
    if (!persisted && askPersist && s.persist) persisted = await s.persist();
  } catch {
    // not persisted
  }
  try {
    if (s.estimate) {
      const e = await s.estimate();
      if (typeof e.quota === "number") quota = e.quota;
    }
  } catch {
    // no quota
  }
  return { persisted, quota };
}
