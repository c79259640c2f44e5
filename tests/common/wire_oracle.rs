//! The oracle for the hand-written wire reader (`core::wire`): serde_json with the types'
//! derives. Shared by tests/core_wire.rs and tests/fuzz.rs (`wire`).

use clientdata::core::resync::ResyncResponse;
use clientdata::core::ExchangeResponse;
use serde_json::Value as Json;

/// The text uses a serde quirk the hand reader refuses on purpose (core::wire's doc): a JSON
/// array in place of a struct's object, or `{"json":null}` for a content kind.
fn quirk(text: &str) -> bool {
    let Ok(top) = serde_json::from_str::<Json>(text) else {
        return false;
    };
    let is_array = |v: Option<&Json>| v.is_some_and(Json::is_array);
    let record_quirk = |r: &Json| {
        let reference = r.get("value").and_then(|v| v.get("ref"));
        r.is_array()
            || is_array(reference)
            || reference
                .and_then(|c| c.get("kind"))
                .is_some_and(Json::is_object)
    };
    let rows = |name| {
        top.get(name)
            .and_then(Json::as_array)
            .is_some_and(|rows| rows.iter().any(record_quirk))
    };
    top.is_array() || rows("records") || rows("rows") || is_array(top.get("next"))
}

/// The hand reader accepts `text` as an exchange reply exactly when serde_json does, with the
/// same value (quirks aside). Returns whether it was accepted.
pub fn agree_exchange(text: &str) -> bool {
    let hand = ExchangeResponse::from_json(text);
    let serde = serde_json::from_str::<ExchangeResponse>(text);
    agree(text, hand, serde)
}

/// As [`agree_exchange`], for a resync page.
pub fn agree_resync(text: &str) -> bool {
    let hand = ResyncResponse::from_json(text);
    let serde = serde_json::from_str::<ResyncResponse>(text);
    agree(text, hand, serde)
}

fn agree<T: PartialEq + std::fmt::Debug>(
    text: &str,
    hand: Result<T, clientdata::core::json_reader::ReadError>,
    serde: Result<T, serde_json::Error>,
) -> bool {
    match (hand, serde) {
        (Ok(hand), Ok(serde)) => {
            assert_eq!(hand, serde, "same text, another value: {text:?}");
            true
        }
        (Err(e), Err(_)) => {
            assert!(e.offset <= text.len(), "offset {} past the end", e.offset);
            false
        }
        (Ok(hand), Err(e)) => {
            panic!("hand reader accepted what serde_json refused ({e}): {text:?} -> {hand:?}")
        }
        (Err(e), Ok(_)) => {
            assert!(
                quirk(text),
                "hand reader refused what serde_json accepted ({e}): {text:?}"
            );
            false
        }
    }
}
