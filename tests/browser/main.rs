//! The browser tier: the store, locks, fencing, tombstone removal, the browser around the store
//! and the core's bindings, in a real browser (Chromium, Firefox or WebKit:
//! scripts/browser-tier.sh). One test binary, so each engine starts once per run: a browser
//! start costs 2-13 s here, and WebKit's now and then stalls and is retried. Every test uses its
//! own database and lock names, so tests sharing the page do not meet. The Worker tier is
//! `tests/worker_store.rs` (a binary of its own: where it runs is set per binary).
#![cfg(target_arch = "wasm32")]

mod support;

mod bindings;
mod environment;
mod fencing;
mod gc;
mod locks;
mod packs;
mod store;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
