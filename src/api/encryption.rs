//! `open({ encryption })`: end-to-end encryption's options, and the key ring they make.
//! `{ key, previousKeys?, blindPluginIds? }` with AES-GCM `CryptoKey`s, or
//! `{ passphrase, previousPassphrases?, blindPluginIds? }` (PBKDF2-HMAC-SHA256 over the user's
//! salt from the server, `core::sealed::PBKDF2_ITERATIONS` iterations).

use js_sys::Array;
use wasm_bindgen::{JsCast, JsValue};

use super::options::{field, string};
use crate::browser::sealed::{passphrase_key, Ring, RingError};
use crate::core::sealed::PBKDF2_ITERATIONS;
use crate::store::error::{StoreError, StoreResult};
use crate::sync::transport::Transport;
use crate::sync::SyncError;

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::InvalidOptions(message.into())
}

/// Where the keys come from.
#[derive(Debug)]
enum Source {
    /// `CryptoKey`s given by the host.
    Keys { key: JsValue, previous: Array },
    /// Passphrases, stretched with the server's salt.
    Passphrases {
        current: String,
        previous: Vec<String>,
    },
}

/// `open`'s `encryption` option, read.
#[derive(Debug)]
pub struct Encryption {
    source: Source,
    blind_plugins: bool,
}

fn list(options: &JsValue, name: &str) -> StoreResult<Array> {
    let value = field(options, name)?;
    if value.is_null_or_undefined() {
        return Ok(Array::new());
    }
    if !Array::is_array(&value) {
        return Err(invalid(format!("encryption.{name} must be an array")));
    }
    Ok(value.unchecked_into())
}

/// Reads `options.encryption` (`None` when absent); `has_server` says whether sync is set up.
pub fn encryption_options(options: &JsValue, has_server: bool) -> StoreResult<Option<Encryption>> {
    let options = field(options, "encryption")?;
    if options.is_null_or_undefined() {
        return Ok(None);
    }
    if !options.is_object() {
        return Err(invalid("encryption must be an object"));
    }
    if !has_server {
        return Err(invalid(
            "encryption needs a server: it seals what a sync sends",
        ));
    }
    let blind = field(&options, "blindPluginIds")?;
    let blind_plugins = match blind.as_bool() {
        Some(b) => b,
        None if blind.is_null_or_undefined() => true,
        None => return Err(invalid("encryption.blindPluginIds must be a boolean")),
    };
    let key = field(&options, "key")?;
    let passphrase = string(&options, "passphrase")
        .map_err(|_| invalid("encryption.passphrase must be a string"))?;
    let source = match (key.is_null_or_undefined(), passphrase) {
        (false, Some(_)) => {
            return Err(invalid("encryption takes a key or a passphrase, not both"));
        }
        (false, None) => Source::Keys {
            key,
            previous: list(&options, "previousKeys")?,
        },
        (true, Some(current)) => {
            let previous = list(&options, "previousPassphrases")?
                .iter()
                .map(|p| p.as_string().filter(|p| !p.is_empty()))
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| {
                    invalid("encryption.previousPassphrases must be non-empty strings")
                })?;
            if current.is_empty() {
                return Err(invalid("encryption.passphrase must not be empty"));
            }
            Source::Passphrases { current, previous }
        }
        (true, None) => return Err(invalid("encryption needs a key or a passphrase")),
    };
    Ok(Some(Encryption {
        source,
        blind_plugins,
    }))
}

impl Encryption {
    /// The key ring these options make (a passphrase asks `transport`'s server for the salt),
    /// and whether plugin ids are blinded.
    pub async fn ring(self, transport: &Transport) -> Result<(Ring, bool), JsValue> {
        let (key, previous) = match self.source {
            Source::Keys { key, previous } => (key, previous),
            Source::Passphrases { current, previous } => {
                let salt = transport.salt().await?;
                let derive = |p: String| {
                    let salt = salt.clone();
                    async move { passphrase_key(&p, &salt, PBKDF2_ITERATIONS).await }
                };
                let key = derive(current).await.map_err(SyncError::from)?;
                let older = Array::new();
                for p in previous {
                    older.push(&derive(p).await.map_err(SyncError::from)?);
                }
                (key, older)
            }
        };
        let ring = Ring::new(&key, &previous).await.map_err(|e| match e {
            RingError::Invalid(message) => JsValue::from(invalid(format!("encryption.{message}"))),
            RingError::Unavailable(e) => JsValue::from(SyncError::from(e)),
        })?;
        Ok((ring, self.blind_plugins))
    }
}
