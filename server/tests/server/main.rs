//! End-to-end tests against the real `clientdata-server` binary on loopback.

#[macro_use]
mod support;

mod catalogue;
mod clock;
mod config;
mod content;
mod crash;
mod devices;
mod errors;
mod exchange;
mod gc;
mod hostile;
mod http;
mod isolation;
mod openapi;
mod ops;
mod salt;
mod scaleout;
