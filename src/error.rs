//! The contract every error type of the crate meets so the JS boundary can turn it into a real
//! `Error` whose `name` is the kind and which carries a stable `code` (docs/ERRORS.md).
//! Each area keeps its own thiserror enum and implements [`Coded`]; on wasm32 this is also the
//! one place errors become JS values (`impl From<..> for JsValue`, so exports use `?`).

/// An extra own property of a JS error (`status`, `holder`, `epoch`, ...).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field<'a> {
    /// A string property.
    Text(&'a str),
    /// A number property.
    Number(f64),
}

/// An error with a JS class name and a stable machine-readable code.
pub trait Coded: std::error::Error {
    /// The JS `Error.name`, e.g. `"InvalidKeyError"`.
    fn name(&self) -> &'static str;
    /// The stable `code`, e.g. `"invalid_key"`.
    fn code(&self) -> &'static str;
    /// Hands `put` the extra properties the JS error carries, in order; they are set after
    /// `code` (a `"code"` entry replaces the stable code, as a server's own code does for
    /// `SyncHttpError`). A callback rather than a list: nothing is allocated or copied.
    fn fields(&self, put: &mut dyn FnMut(&'static str, Field<'_>)) {
        let _ = put;
    }
}

impl Coded for crate::core::Error {
    fn name(&self) -> &'static str {
        crate::core::Error::name(self)
    }
    fn code(&self) -> &'static str {
        crate::core::Error::code(self)
    }
}

#[cfg(target_arch = "wasm32")]
pub use js::to_js_error;

#[cfg(target_arch = "wasm32")]
mod js {
    use js_sys::Reflect;
    use wasm_bindgen::JsValue;

    use super::{Coded, Field};

    /// A JS `Error` with `name`, `code`, `message` and the [`Coded::fields`] of `err`.
    pub fn to_js_error<E: Coded + ?Sized>(err: &E) -> js_sys::Error {
        let error = new_error(&err.to_string(), err.name(), err.code());
        err.fields(&mut |name, field| set_field(&error, name, field));
        error
    }

    // The parts shared by every error type, kept out of line so each type adds only its own
    // `to_string` and `fields`.
    #[inline(never)]
    fn new_error(message: &str, name: &str, code: &str) -> js_sys::Error {
        let error = js_sys::Error::new(message);
        error.set_name(name);
        set_field(&error, "code", Field::Text(code));
        error
    }

    #[inline(never)]
    fn set_field(error: &js_sys::Error, name: &str, field: Field<'_>) {
        let value = match field {
            Field::Text(text) => JsValue::from_str(text),
            Field::Number(n) => JsValue::from_f64(n),
        };
        // Setting a property on a fresh `Error` cannot fail.
        let _ = Reflect::set(error, &JsValue::from_str(name), &value);
    }

    macro_rules! into_js {
        ($($t:ty),*) => {$(
            impl From<$t> for JsValue {
                fn from(err: $t) -> JsValue {
                    to_js_error(&err).into()
                }
            }
        )*};
    }

    into_js!(
        crate::core::Error,
        crate::store::error::StoreError,
        crate::sync::SyncError,
        crate::lock::LockError
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::LockError;
    use crate::sync::SyncError;

    fn fields(err: &dyn Coded) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        err.fields(&mut |name, field| {
            let text = match field {
                Field::Text(t) => t.to_owned(),
                Field::Number(n) => n.to_string(),
            };
            out.push((name, text));
        });
        out
    }

    #[test]
    fn extra_fields_name_what_each_kind_carries() {
        let http = SyncError::Http {
            status: 401,
            code: "unauthorized".into(),
            message: String::new(),
            retry_after_ms: None,
        };
        assert_eq!(
            fields(&http),
            [("code", "unauthorized".into()), ("status", "401".into())]
        );
        let busy = SyncError::Http {
            status: 503,
            code: "overloaded".into(),
            message: String::new(),
            retry_after_ms: Some(2_000),
        };
        assert_eq!(
            fields(&busy),
            [
                ("code", "overloaded".into()),
                ("status", "503".into()),
                ("retryAfterMs", "2000".into())
            ]
        );
        let timeout = LockError::Timeout {
            path: "p".into(),
            holder: "tab-1".into(),
            waited_ms: 5,
        };
        assert_eq!(
            fields(&timeout),
            [
                ("holder", "tab-1".into()),
                ("path", "p".into()),
                ("waitedMs", "5".into())
            ]
        );
        let lost = LockError::Lost {
            lock: "l".into(),
            epoch: 3,
            newer: Some(4),
        };
        assert_eq!(fields(&lost), [("lock", "l".into()), ("epoch", "3".into())]);
        assert!(fields(&SyncError::Aborted).is_empty());
        assert!(fields(&crate::core::Error::NoProgress).is_empty());
    }
}
