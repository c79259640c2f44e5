//! Standard base64 (RFC 4648 alphabet, `=` padding), for byte values on the wire and in the
//! journal. Strict like the `base64` crate's `STANDARD` engine, which it replaces in the package
//! (its generic engine was about 6 KB of wasm): padding is required, nothing but the alphabet
//! is accepted, and the unused low bits of the last symbol must be zero, so every byte string
//! has exactly one accepted text. The tests check both agree.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `bytes` as padded base64 text.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let group = byte(0) << 16 | byte(1) << 8 | byte(2);
        // A chunk of n bytes fills n + 1 symbols; `=` pads the group to four.
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(ALPHABET[(group >> (18 - 6 * i) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

/// The bytes `text` encodes, or `None` if it is not canonical padded base64.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if text.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let groups = text.len() / 4;
    for (n, quad) in text.chunks(4).enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && n + 1 < groups) {
            return None;
        }
        let mut group = 0u32;
        for &c in &quad[..4 - pad] {
            group = group << 6 | u32::from(symbol_value(c)?);
        }
        group <<= 6 * pad;
        let bytes = [(group >> 16) as u8, (group >> 8) as u8, group as u8];
        let (kept, unused) = bytes.split_at(3 - pad);
        // Unused low bits set: another text encodes the same bytes, so this one is refused.
        if unused.iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(kept);
    }
    Some(out)
}

fn symbol_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use ::base64::Engine as _;

    use super::*;

    const STANDARD: ::base64::engine::GeneralPurpose = ::base64::engine::general_purpose::STANDARD;

    #[test]
    fn encodes_like_the_base64_crate() {
        let mut rng = fastrand::Rng::with_seed(64);
        for len in (0..40).chain([255, 256, 1000]) {
            let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            let text = encode(&bytes);
            assert_eq!(text, STANDARD.encode(&bytes));
            assert_eq!(decode(&text), Some(bytes));
        }
    }

    /// Valid texts with one symbol changed, cut, extended or padded oddly: accepted or refused
    /// exactly as the crate does, with the same bytes.
    #[test]
    fn decodes_and_refuses_like_the_base64_crate() {
        let mut rng = fastrand::Rng::with_seed(46);
        let symbols = b"AQgw/+=Zz09 -_\n\xc3";
        for _ in 0..20_000 {
            let bytes: Vec<u8> = (0..rng.usize(0..10)).map(|_| rng.u8(..)).collect();
            let mut text = STANDARD.encode(&bytes).into_bytes();
            match rng.u8(0..4) {
                0 if !text.is_empty() => {
                    let at = rng.usize(0..text.len());
                    text[at] = symbols[rng.usize(0..symbols.len())];
                }
                1 => text.truncate(rng.usize(0..=text.len())),
                2 => text.push(symbols[rng.usize(0..symbols.len())]),
                _ => {}
            }
            let Ok(text) = String::from_utf8(text) else {
                continue;
            };
            assert_eq!(decode(&text), STANDARD.decode(&text).ok(), "{text:?}");
        }
        for text in [
            "", "=", "==", "A===", "AA==", "AB==", "AAA=", "AAB=", "AA=A", "AAAA====",
        ] {
            assert_eq!(decode(text), STANDARD.decode(text).ok(), "{text:?}");
        }
    }
}
