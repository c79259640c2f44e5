//! Lowercase hex both ways, written by hand: `format!("{:012x}")` brings `core::fmt`'s padding
//! into the hottest path there is (every write stamps an HLC, whose text is 34 hex digits and
//! dashes). Reading accepts lowercase digits only: every hex text here has one spelling.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Appends the low `width` hex digits of `value` (at most 16), most significant first,
/// zero-padded: `push_u64(&mut s, 0xab, 4)` appends `"00ab"`.
pub fn push_u64(out: &mut String, value: u64, width: usize) {
    debug_assert!(width <= 16);
    for nibble in (0..width).rev() {
        out.push(char::from(DIGITS[((value >> (nibble * 4)) & 15) as usize]));
    }
}

/// Appends the two hex digits of each byte.
pub fn push_bytes(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        push_u64(out, u64::from(b), 2);
    }
}

/// The hex text of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_bytes(&mut out, bytes);
    out
}

/// The value of one lowercase hex digit; `None` for anything else (uppercase included).
pub fn digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Exactly `N` bytes from `2 * N` lowercase hex digits; `None` for anything else.
pub fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_formatter_for_every_width() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..2_000 {
            let value = rng.u64(..);
            for width in 1..=16 {
                let mut out = String::new();
                push_u64(&mut out, value, width);
                let masked = if width == 16 {
                    value
                } else {
                    value & ((1 << (width * 4)) - 1)
                };
                assert_eq!(out, format!("{masked:0width$x}"), "{value:x} in {width}");
            }
        }
        assert_eq!(encode(&[0, 9, 10, 255]), "00090aff");
        assert_eq!(encode(&[]), "");
    }

    #[test]
    fn decodes_what_it_encodes_and_nothing_else() {
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..500 {
            let bytes: [u8; 8] = std::array::from_fn(|_| rng.u8(..));
            assert_eq!(decode::<8>(&encode(&bytes)), Some(bytes));
        }
        for bad in [
            "00090aFF",
            "00090af",
            "00090aff0",
            "0009 aff",
            "00090afg",
            "00090aé",
        ] {
            assert_eq!(decode::<4>(bad), None, "{bad}");
        }
        assert_eq!(decode::<0>(""), Some([]));
        assert!((0..=255u8).all(|b| digit(b).is_some() == b"0123456789abcdef".contains(&b)));
    }
}
