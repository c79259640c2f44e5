// A synchronous write's journal key and entry, joined in JS from strings that are JS strings
// already (the caller's key, the store's plugin id, the write's stamp and JSON text), so none
// of them is copied out of wasm per write. The format is src/store/journal.rs's.

export function journalKey(prefix, seq) {
  return prefix + seq;
}

// `text`: a JSON value's text (tag `j`); undefined for a tombstone (tag `d`).
export function journalEntry(stamp, plugin, key, text) {
  const head = `${stamp}\u0001${plugin}\u0001${key}\u0001`;
  return text === undefined ? `${head}d` : `${head}j${text}`;
}
