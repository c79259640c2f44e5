//! The JavaScript surface: `#[wasm_bindgen]` classes and TypeScript types. Converts, does not
//! decide. wasm32 only.

pub mod js_error;
pub mod lock;
