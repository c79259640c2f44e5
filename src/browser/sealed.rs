//! WebCrypto for end-to-end encryption, bound from `sealed.js`: a key ring (AES-GCM keys, their
//! ids and the HMAC name key, all non-extractable), PBKDF2 from a passphrase, and batched HMAC,
//! seal and open. The bytes they work on are laid out by `core::sealed`.

use js_sys::{Array, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::interop::get;
use crate::core::sealed::KeyId;
use crate::core::SealError;

#[wasm_bindgen(module = "/src/browser/sealed.js")]
extern "C" {
    #[wasm_bindgen(js_name = prepareKeys)]
    fn prepare_keys_js(key: &JsValue, previous: &Array) -> Promise;
    #[wasm_bindgen(js_name = passphraseKey)]
    fn passphrase_key_js(passphrase: &str, salt: &[u8], iterations: u32) -> Promise;
    #[wasm_bindgen(js_name = blindAll)]
    fn blind_all_js(ring: &JsValue, inputs: &Array) -> Promise;
    #[wasm_bindgen(js_name = sealAll)]
    fn seal_all_js(ring: &JsValue, plains: &Array, ads: &Array) -> Promise;
    #[wasm_bindgen(js_name = openAll)]
    fn open_all_js(ring: &JsValue, ids: &Array, data: &Array, ads: &Array) -> Promise;
}

/// A ring of keys: the one that seals, every one that opens, and the name key.
#[derive(Debug, Clone)]
pub struct Ring {
    js: JsValue,
    /// The id of the key that seals.
    pub current: KeyId,
    /// The ids of every key that opens (the current one first).
    pub held: Vec<KeyId>,
}

/// Why a key ring could not be made.
#[derive(Debug)]
pub enum RingError {
    /// A key is not an AES-GCM `CryptoKey` that encrypts and decrypts (the message says which).
    Invalid(String),
    /// WebCrypto is missing or failed.
    Unavailable(SealError),
}

async fn settle(promise: Promise) -> Result<JsValue, SealError> {
    let got = JsFuture::from(promise)
        .await
        .map_err(|e| SealError::Unavailable(format!("{e:?}")))?;
    match get(&got, "failed").as_string() {
        Some(message) => Err(SealError::Unavailable(message)),
        None => Ok(got),
    }
}

fn key_id(value: JsValue) -> Result<KeyId, SealError> {
    KeyId::from_mac(&Uint8Array::new(&value).to_vec())
        .ok_or_else(|| SealError::Unavailable("a key id of fewer than 4 bytes".into()))
}

fn bytes_array<'a>(items: impl Iterator<Item = &'a [u8]>) -> Array {
    items.map(|b| JsValue::from(Uint8Array::from(b))).collect()
}

fn byte_vecs(value: &JsValue) -> Vec<Option<Vec<u8>>> {
    Array::from(&get(value, "out"))
        .iter()
        .map(|v| (!v.is_null()).then(|| Uint8Array::new(&v).to_vec()))
        .collect()
}

impl Ring {
    /// The ring of `key` (seals) and `previous` (open only; the last of them, or `key`, names).
    pub async fn new(key: &JsValue, previous: &Array) -> Result<Ring, RingError> {
        let got = JsFuture::from(prepare_keys_js(key, previous))
            .await
            .map_err(|e| RingError::Unavailable(SealError::Unavailable(format!("{e:?}"))))?;
        if let Some(message) = get(&got, "invalid").as_string() {
            return Err(RingError::Invalid(message));
        }
        if let Some(message) = get(&got, "failed").as_string() {
            return Err(RingError::Unavailable(SealError::Unavailable(message)));
        }
        let held = Array::from(&get(&got, "ids"))
            .iter()
            .map(key_id)
            .collect::<Result<Vec<_>, _>>()
            .map_err(RingError::Unavailable)?;
        Ok(Ring {
            js: get(&got, "ring"),
            current: key_id(get(&got, "current")).map_err(RingError::Unavailable)?,
            held,
        })
    }

    /// HMAC-SHA-256 of each input under the name key.
    pub async fn blind(&self, inputs: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, SealError> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let got = settle(blind_all_js(
            &self.js,
            &bytes_array(inputs.iter().map(Vec::as_slice)),
        ))
        .await?;
        Ok(byte_vecs(&got).into_iter().flatten().collect())
    }

    /// AES-GCM of each `(plaintext, associated data)` under the current key: nonce + sealed.
    pub async fn seal(&self, jobs: &[(&[u8], &[u8])]) -> Result<Vec<Vec<u8>>, SealError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let plains = bytes_array(jobs.iter().map(|j| j.0));
        let ads = bytes_array(jobs.iter().map(|j| j.1));
        let got = settle(seal_all_js(&self.js, &plains, &ads)).await?;
        Ok(byte_vecs(&got).into_iter().flatten().collect())
    }

    /// Opens each `(key id, nonce + sealed, associated data)`; `None` where it does not
    /// authenticate.
    pub async fn open(
        &self,
        jobs: &[(KeyId, &[u8], &[u8])],
    ) -> Result<Vec<Option<Vec<u8>>>, SealError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let ids = bytes_array(jobs.iter().map(|j| j.0 .0.as_slice()));
        let data = bytes_array(jobs.iter().map(|j| j.1));
        let ads = bytes_array(jobs.iter().map(|j| j.2));
        let got = settle(open_all_js(&self.js, &ids, &data, &ads)).await?;
        Ok(byte_vecs(&got))
    }
}

/// A non-extractable AES-GCM key from `passphrase` and `salt` by PBKDF2-HMAC-SHA256.
pub async fn passphrase_key(
    passphrase: &str,
    salt: &[u8],
    iterations: u32,
) -> Result<JsValue, SealError> {
    let got = settle(passphrase_key_js(passphrase, salt, iterations)).await?;
    Ok(get(&got, "key"))
}
