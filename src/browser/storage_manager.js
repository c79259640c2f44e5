// The JS half of src/browser/storage_manager.rs: navigator.storage, never throwing.

export async function storageInfo(askPersist) {
  const s = globalThis.navigator && globalThis.navigator.storage;
  let persisted = false, quota = null;
  if (!s) return { persisted, quota };
  try {
    persisted = s.persisted ? await s.persisted() : false;
    if (!persisted && askPersist && s.persist) persisted = await s.persist();
  } catch {
    // Refused or unsupported: reported as not persisted.
  }
  try {
    if (s.estimate) {
      const e = await s.estimate();
      if (typeof e.quota === "number") quota = e.quota;
    }
  } catch {
    // No estimate: no quota reported.
  }
  return { persisted, quota };
}
