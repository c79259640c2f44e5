//! Lowercase hex, written by hand: `format!("{:012x}")` brings `core::fmt`'s padding into the
//! hottest path there is (every write stamps an HLC, whose text is 34 hex digits and dashes).

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
}
