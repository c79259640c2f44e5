//! The pure core: everything that can be decided without a browser. No web-sys, js-sys or
//! wasm-bindgen import may appear below this module; it builds and is tested natively.

pub mod backoff;
pub mod base64;
pub mod content;
pub mod error;
pub mod gc;
pub mod hex;
pub mod hlc;
pub mod ids;
pub mod json;
pub mod json_reader;
pub mod pipeline;
pub mod protocol;
pub mod record;
pub mod replica;
pub mod resync;
pub mod sealed;
pub mod sorted;
pub mod watermark;
pub mod wire;

pub use error::{Error, SealError};
pub use hlc::{Clock, ClockState, Hlc, HlcClock};
pub use ids::{DeviceSecret, Key, NodeId, PluginId};
pub use protocol::{DeviceEpoch, ExchangeRequest, ExchangeResponse, Limits, PROTOCOL_VERSION};
pub use record::{Record, Value};
pub use replica::{Batch, Client, MemoryStore, Store, VectorKind};
pub use watermark::{VersionVector, Watermarks};
