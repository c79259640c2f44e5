//! Standard base64 (RFC 4648 alphabet, `=` padding), for byte values on the wire and in the
//! journal. Strict like the `base64` crate's `STANDARD` engine, which it replaces in the package
//! (its generic engine was about 6 KB of wasm): padding is required, nothing but the alphabet
//! is accepted, and the unused low bits of the last symbol must be zero, so every byte string
//! has exactly one accepted text. The tests check both agree.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Marks a byte outside the alphabet in [`DECODE`].
const INVALID: u8 = 0xFF;
/// Bits set in [`INVALID`] and in no sextet.
const INVALID_BITS: u8 = 0xC0;

/// Each byte's sextet, or [`INVALID`].
const DECODE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// `bytes` as padded base64 text.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len().div_ceil(3) * 4);
    let symbol = |group: u32, shift: u32| ALPHABET[(group >> shift & 63) as usize];
    let chunks = bytes.chunks_exact(3);
    let rest = chunks.remainder();
    for chunk in chunks {
        let group = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
        out.extend_from_slice(&[
            symbol(group, 18),
            symbol(group, 12),
            symbol(group, 6),
            symbol(group, 0),
        ]);
    }
    // One or two bytes left fill two or three symbols; `=` pads the group to four.
    if let [first, second @ ..] = rest {
        let second = second.first().copied();
        let group = u32::from(*first) << 16 | u32::from(second.unwrap_or(0)) << 8;
        let third = if second.is_some() {
            symbol(group, 6)
        } else {
            b'='
        };
        out.extend_from_slice(&[symbol(group, 18), symbol(group, 12), third, b'=']);
    }
    // Only alphabet bytes and `=` were written: this never falls back.
    String::from_utf8(out).unwrap_or_default()
}

/// The bytes `text` encodes, or `None` if it is not canonical padded base64.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if text.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (body, last) = text.split_at(text.len().saturating_sub(4));
    for quad in body.chunks_exact(4) {
        let group = sextets(quad)?;
        out.extend_from_slice(&[(group >> 16) as u8, (group >> 8) as u8, group as u8]);
    }
    // Only the last group may be padded, with one or two `=`.
    let pad = last.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return None;
    }
    if let Some(symbols) = last.get(..4 - pad) {
        let group = sextets(symbols)? << (6 * pad);
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

/// The sextets of up to four symbols, packed high to low; `None` if one is not in the alphabet.
fn sextets(symbols: &[u8]) -> Option<u32> {
    let mut group = 0u32;
    let mut seen = 0u8;
    for &c in symbols {
        let value = DECODE[usize::from(c)];
        seen |= value;
        group = group << 6 | u32::from(value);
    }
    (seen & INVALID_BITS == 0).then_some(group)
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
