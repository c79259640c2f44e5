// WebCrypto for end-to-end encryption (src/core/sealed.rs lays out every byte; this file only
// runs AES-GCM, HMAC-SHA-256 and PBKDF2). Every key made here is non-extractable. Every function
// resolves with a plain result ({ ... } or { failed: message }), never a rejection.

const subtle = () => globalThis.crypto && globalThis.crypto.subtle;
const text = (s) => new TextEncoder().encode(s);
const failed = (e) => ({ failed: String((e && (e.name + ": " + e.message)) || e) });

// The nonce of the one derivation each key makes (a fixed message under a fixed nonce: the same
// bytes every time, never a second message under it; record nonces are random, 96 bits).
const DERIVE_IV = text("clientdata/d").slice(0, 12);

function isAesGcm(key) {
  return (
    typeof globalThis.CryptoKey === "function" &&
    key instanceof globalThis.CryptoKey &&
    key.algorithm &&
    key.algorithm.name === "AES-GCM" &&
    key.usages.includes("encrypt") &&
    key.usages.includes("decrypt")
  );
}

// An AES-GCM key's HMAC subkey (AES-GCM of 32 zero bytes under the fixed nonce, used as a PRF)
// and its id (the first 4 bytes of HMAC(subkey, "clientdata/key-id")).
async function derive(key) {
  const bits = await subtle().encrypt(
    { name: "AES-GCM", iv: DERIVE_IV, additionalData: text("clientdata/derive") },
    key,
    new Uint8Array(32),
  );
  const mac = await subtle().importKey(
    "raw",
    new Uint8Array(bits).slice(0, 32),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const id = new Uint8Array(await subtle().sign("HMAC", mac, text("clientdata/key-id"))).slice(0, 4);
  return { key, mac, id };
}

// The key ring: `key` seals, `previous` only open; names are blinded with the subkey of the
// oldest key (the last of `previous`, else `key`), so a rotation keeps every blinded name. Resolves { ring, current: id bytes, ids: [id bytes] } or { failed }.
export async function prepareKeys(key, previous) {
  if (!subtle()) return { failed: "crypto.subtle is missing (not a secure context?)" };
  const all = [key, ...previous];
  const bad = all.findIndex((k) => !isAesGcm(k));
  if (bad >= 0) {
    return { invalid: `${bad === 0 ? "key" : `previousKeys[${bad - 1}]`} must be an AES-GCM CryptoKey with encrypt and decrypt usages` };
  }
  try {
    const derived = await Promise.all(all.map(derive));
    const byId = new Map(derived.map((d) => [d.id.join(","), d.key]));
    const ring = { current: derived[0], byId, names: derived[derived.length - 1].mac };
    return { ring, current: derived[0].id, ids: derived.map((d) => d.id) };
  } catch (e) {
    return failed(e);
  }
}

// A non-extractable AES-GCM key from a passphrase: PBKDF2-HMAC-SHA256 over the server's salt.
export async function passphraseKey(passphrase, salt, iterations) {
  if (!subtle()) return { failed: "crypto.subtle is missing (not a secure context?)" };
  try {
    const base = await subtle().importKey("raw", text(passphrase), "PBKDF2", false, ["deriveKey"]);
    const key = await subtle().deriveKey(
      { name: "PBKDF2", hash: "SHA-256", salt, iterations },
      base,
      { name: "AES-GCM", length: 256 },
      false,
      ["encrypt", "decrypt"],
    );
    return { key };
  } catch (e) {
    return failed(e);
  }
}

// HMAC-SHA-256 of each input under the ring's name key.
export async function blindAll(ring, inputs) {
  try {
    const macs = await Promise.all(inputs.map((i) => subtle().sign("HMAC", ring.names, i)));
    return { out: macs.map((m) => new Uint8Array(m)) };
  } catch (e) {
    return failed(e);
  }
}

// AES-GCM of each plaintext with its associated data under the current key: iv + ciphertext.
export async function sealAll(ring, plains, ads) {
  try {
    const out = await Promise.all(
      plains.map(async (plain, i) => {
        const iv = globalThis.crypto.getRandomValues(new Uint8Array(12));
        const sealed = await subtle().encrypt({ name: "AES-GCM", iv, additionalData: ads[i] }, ring.current.key, plain);
        const both = new Uint8Array(12 + sealed.byteLength);
        both.set(iv);
        both.set(new Uint8Array(sealed), 12);
        return both;
      }),
    );
    return { out };
  } catch (e) {
    return failed(e);
  }
}

// Opens each (key id, iv + ciphertext, associated data); null where authentication fails.
export async function openAll(ring, ids, data, ads) {
  try {
    const out = await Promise.all(
      data.map(async (both, i) => {
        const key = ring.byId.get(Array.from(ids[i]).join(","));
        if (!key) return null;
        try {
          const plain = await subtle().decrypt(
            { name: "AES-GCM", iv: both.subarray(0, 12), additionalData: ads[i] },
            key,
            both.subarray(12),
          );
          return new Uint8Array(plain);
        } catch (e) {
          if (e && e.name === "OperationError") return null;
          throw e;
        }
      }),
    );
    return { out };
  } catch (e) {
    return failed(e);
  }
}
