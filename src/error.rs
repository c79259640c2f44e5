//! The contract every error type of the crate meets so the JS boundary can turn it into a real
//! `Error` whose `name` is the kind and which carries a stable `code` (docs/ERRORS.md).
//! Each area keeps its own thiserror enum and implements [`Coded`]; on wasm32 this is also the
//! one place errors become JS values (`impl From<..> for JsValue`, so exports use `?`).

/// An extra own property of a JS error (`status`, `holder`, `epoch`, ...).
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// A string property.
    Text(String),
    /// A number property.
    Number(f64),
}

/// An error with a JS class name and a stable machine-readable code.
pub trait Coded: std::error::Error {
    /// The JS `Error.name`, e.g. `"InvalidKeyError"`.
    fn name(&self) -> &'static str;
    /// The stable `code`, e.g. `"invalid_key"`.
    fn code(&self) -> &'static str;
    /// Extra properties the JS error carries, set in this order after `code` (a `"code"` entry
    /// replaces the stable code, as a server's own code does for `SyncHttpError`).
    fn fields(&self) -> Vec<(&'static str, Field)> {
        Vec::new()
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
        let error = js_sys::Error::new(&err.to_string());
        error.set_name(err.name());
        // Setting a property on a fresh `Error` cannot fail.
        let _ = Reflect::set(&error, &"code".into(), &JsValue::from_str(err.code()));
        for (name, field) in err.fields() {
            let value = match field {
                Field::Text(text) => JsValue::from_str(&text),
                Field::Number(n) => JsValue::from_f64(n),
            };
            let _ = Reflect::set(&error, &JsValue::from_str(name), &value);
        }
        error
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

    #[test]
    fn extra_fields_name_what_each_kind_carries() {
        let http = SyncError::Http {
            status: 401,
            code: "unauthorized".into(),
            message: String::new(),
        };
        assert_eq!(
            http.fields(),
            vec![
                ("code", Field::Text("unauthorized".into())),
                ("status", Field::Number(401.0))
            ]
        );
        let timeout = LockError::Timeout {
            path: "p".into(),
            holder: "tab-1".into(),
            waited_ms: 5,
        };
        let names: Vec<_> = timeout.fields().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["holder", "path", "waitedMs"]);
        assert!(SyncError::Aborted.fields().is_empty());
        assert!(crate::core::Error::NoProgress.fields().is_empty());
    }
}
