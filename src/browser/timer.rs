//! Owned timers on the global `setTimeout`/`setInterval` (windows and workers alike). Dropping
//! a [`Sleep`] or an [`Interval`] clears it, so nothing outlives its owner.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(handle: &JsValue);
    #[wasm_bindgen(js_name = setInterval)]
    fn set_interval(handler: &Function, ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearInterval)]
    fn clear_interval(handle: &JsValue);
}

fn clamp_ms(ms: u64) -> i32 {
    i32::try_from(ms).unwrap_or(i32::MAX)
}

/// A future that completes after `ms` milliseconds; dropping it clears the timeout.
#[must_use = "a Sleep does nothing unless awaited"]
pub struct Sleep {
    promise: JsFuture,
    handle: JsValue,
}

/// Sleeps for `ms` milliseconds (clamped to 2^31-1).
pub fn sleep(ms: u64) -> Sleep {
    let mut handle = JsValue::UNDEFINED;
    let promise = Promise::new(&mut |resolve, _reject| {
        handle = set_timeout(&resolve, clamp_ms(ms));
    });
    Sleep {
        promise: JsFuture::from(promise),
        handle,
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.promise).poll(cx).map(|_| ())
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        clear_timeout(&self.handle);
    }
}

/// Calls a Rust closure every `ms` milliseconds until dropped.
#[must_use = "an Interval stops when dropped"]
pub struct Interval {
    handle: JsValue,
    _closure: Closure<dyn FnMut()>,
}

impl Interval {
    /// Starts calling `tick` every `ms` milliseconds (clamped to 2^31-1).
    pub fn new(ms: u64, tick: impl FnMut() + 'static) -> Interval {
        let closure = Closure::<dyn FnMut()>::new(tick);
        let handle = set_interval(closure.as_ref().unchecked_ref(), clamp_ms(ms));
        Interval {
            handle,
            _closure: closure,
        }
    }
}

impl Drop for Interval {
    fn drop(&mut self) {
        clear_interval(&self.handle);
    }
}
