//! The contract every error type of the crate meets so the JS boundary can turn it into a real
//! `Error` whose `name` is the kind and which carries a stable `code` (docs/ERRORS.md).
//! Each area keeps its own thiserror enum and implements [`Coded`].

/// An error with a JS class name and a stable machine-readable code.
pub trait Coded: std::error::Error {
    /// The JS `Error.name`, e.g. `"InvalidKeyError"`.
    fn name(&self) -> &'static str;
    /// The stable `code`, e.g. `"invalid_key"`.
    fn code(&self) -> &'static str;
}

impl Coded for crate::core::Error {
    fn name(&self) -> &'static str {
        crate::core::Error::name(self)
    }
    fn code(&self) -> &'static str {
        crate::core::Error::code(self)
    }
}
