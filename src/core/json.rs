//! A syntax check for JSON text (RFC 8259), so a record's `json` value is known to parse before
//! the server stores it or a client applies it; also where one value ends (`value_end`, for
//! readers that skip a member) and the string escaping every hand-written JSON text uses
//! (`push_str`). No parser dependency: the wasm build carries no serde_json, and only the
//! grammar matters here (nothing is built). Iterative, so deep nesting cannot overflow the stack.

/// Why a text is not JSON: what was wrong, and at which byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonSyntaxError {
    /// Byte offset of the first offending byte (the text's length at an unexpected end).
    pub offset: usize,
    /// What the grammar expected there.
    pub reason: &'static str,
}

impl std::fmt::Display for JsonSyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

/// Appends `s` as a JSON string literal, escaped as serde_json escapes it (so hand-written
/// wire text is byte for byte what the server's serde_json would write).
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        // Copy the run of plain bytes before this one at once: values are mostly plain.
        out.push_str(&s[plain..i]);
        plain = i + 1;
        if short.is_empty() {
            out.push_str("\\u00");
            super::hex::push_u64(out, u64::from(b), 2);
        } else {
            out.push_str(short);
        }
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

/// Checks that `text` is exactly one JSON value, optionally surrounded by whitespace.
pub fn check_json(text: &str) -> Result<(), JsonSyntaxError> {
    let mut p = Parser {
        bytes: text.as_bytes(),
        at: value_end(text, 0)?,
    };
    p.skip_ws();
    match p.peek() {
        None => Ok(()),
        Some(_) => Err(p.error("trailing characters after the value")),
    }
}

/// Where the one JSON value starting at byte `at` (after optional whitespace) ends: what a
/// reader skips an ignored member's value with.
pub(crate) fn value_end(text: &str, at: usize) -> Result<usize, JsonSyntaxError> {
    let mut p = Parser {
        bytes: text.as_bytes(),
        at,
    };
    // Open containers: `true` for an object, `false` for an array.
    let mut open: Vec<bool> = Vec::new();
    loop {
        // A value is expected here.
        p.skip_ws();
        match p.peek() {
            Some(b'{') => {
                p.at += 1;
                p.skip_ws();
                if p.eat(b'}') {
                    // Empty object: a complete value; fall through to what follows it.
                } else {
                    p.member_key()?;
                    open.push(true);
                    continue;
                }
            }
            Some(b'[') => {
                p.at += 1;
                p.skip_ws();
                if !p.eat(b']') {
                    open.push(false);
                    continue;
                }
            }
            Some(b'"') => p.string()?,
            Some(b'-' | b'0'..=b'9') => p.number()?,
            Some(b't') => p.literal(b"true")?,
            Some(b'f') => p.literal(b"false")?,
            Some(b'n') => p.literal(b"null")?,
            Some(_) => return Err(p.error("expected a value")),
            None => return Err(p.error("unexpected end, expected a value")),
        }
        // A value is complete: close containers until one continues with a comma.
        loop {
            let Some(&is_object) = open.last() else {
                return Ok(p.at);
            };
            p.skip_ws();
            let close = if is_object { b'}' } else { b']' };
            if p.eat(b',') {
                if is_object {
                    p.skip_ws();
                    p.member_key()?;
                }
                break;
            }
            if p.eat(close) {
                open.pop();
                continue;
            }
            return Err(p.error(if is_object {
                "expected `,` or `}`"
            } else {
                "expected `,` or `]`"
            }));
        }
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.at += usize::from(hit);
        hit
    }

    fn error(&self, reason: &'static str) -> JsonSyntaxError {
        JsonSyntaxError {
            offset: self.at,
            reason,
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// `"key"` then `:`, leaving the parser where the member's value starts.
    fn member_key(&mut self) -> Result<(), JsonSyntaxError> {
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a string key"));
        }
        self.string()?;
        self.skip_ws();
        if !self.eat(b':') {
            return Err(self.error("expected `:`"));
        }
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), JsonSyntaxError> {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(self.error("expected `true`, `false` or `null`"))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Result<(), JsonSyntaxError> {
        self.eat(b'-');
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("expected a digit")),
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err(self.error("expected a digit after `.`"));
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return Err(self.error("expected a digit in the exponent"));
            }
        }
        Ok(())
    }

    /// A string starting at the opening quote. The input is `&str`, so UTF-8 is already valid;
    /// only control characters and escapes need checking.
    fn string(&mut self) -> Result<(), JsonSyntaxError> {
        self.at += 1;
        loop {
            self.skip_plain();
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.at += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.at += 1
                        }
                        Some(b'u') => {
                            self.at += 1;
                            for _ in 0..4 {
                                if !self.peek().is_some_and(|b| b.is_ascii_hexdigit()) {
                                    return Err(self.error("expected 4 hex digits after `\\u`"));
                                }
                                self.at += 1;
                            }
                        }
                        _ => return Err(self.error("invalid escape")),
                    }
                }
                Some(0..=0x1f) => return Err(self.error("control character in a string")),
                Some(_) => self.at += 1,
            }
        }
    }

    fn skip_plain(&mut self) {
        self.at += plain_words(&self.bytes[self.at..]);
    }
}

/// How many leading bytes of string content need no decision, counted eight at a time (a
/// multiple of 8; the caller looks at the rest byte by byte): most of a value's bytes are plain,
/// and a byte-at-a-time loop made the syntax check 14% of the server's ingest. A word is plain
/// when none of its bytes is `"`, a backslash or below 0x20 (exact SWAR tests).
pub(crate) fn plain_words(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    let mut plain = 0;
    for chunk in bytes.chunks_exact(8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_ne_bytes(word);
        let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0;
        if below_space
            || has_zero(w ^ (ONES * u64::from(b'"')))
            || has_zero(w ^ (ONES * u64::from(b'\\')))
        {
            break;
        }
        plain += 8;
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_json_passes() {
        for ok in [
            "1",
            "-0",
            "0.5e-3",
            "1E+9",
            " true ",
            "false",
            "null",
            "\"\"",
            "\"a\\u00e9\\n\\\"\\/\"",
            "\"\\ud800\"",
            "\"é😀\"",
            "[]",
            "{}",
            "[1,[2,{\"a\":[]}],{}]",
            "{\"a\":1,\"b\":{\"c\":[true,null]}}",
            "\n\t{ \"k\" : [ 1 , 2 ] }\r\n",
        ] {
            assert_eq!(check_json(ok), Ok(()), "{ok:?}");
        }
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(check_json(&deep), Ok(()), "deep nesting, no recursion");
    }

    #[test]
    fn invalid_json_names_the_offset() {
        for (bad, offset) in [
            ("", 0),
            ("   ", 3),
            ("{not json", 1),
            ("1 2", 2),
            ("01", 1),
            ("-", 1),
            ("1.", 2),
            ("1e", 2),
            (".5", 0),
            ("+1", 0),
            ("tru", 0),
            ("nul", 0),
            ("'a'", 0),
            ("\"a", 2),
            ("\"a\u{1}\"", 2),
            ("\"\\x\"", 2),
            ("\"\\u12g4\"", 5),
            ("[1,]", 3),
            ("[1 2]", 3),
            ("{\"a\"}", 4),
            ("{\"a\":1,}", 7),
            ("{1:2}", 1),
            ("{\"a\":1]", 6),
            ("[1}", 2),
            ("[[", 2),
            ("NaN", 0),
            ("Infinity", 0),
            ("undefined", 0),
        ] {
            let err = check_json(bad).unwrap_err();
            assert_eq!(err.offset, offset, "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_special_byte_at_every_offset_of_a_long_string_is_seen() {
        // skip_plain reads eight bytes at a time: every offset within and across words.
        for len in 0..40 {
            for at in 0..len {
                for special in ["\"", "\\", "\\n", "\\u00e9", "\u{1}", "\n", "\u{7f}", "é"] {
                    let mut body = "a".repeat(len);
                    body.replace_range(at..at + 1, special);
                    let text = format!("\"{body}\"");
                    assert_eq!(
                        check_json(&text).is_ok(),
                        serde_json::from_str::<serde_json::Value>(&text).is_ok(),
                        "{text:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn agrees_with_serde_json_on_seeded_mutations() {
        let seeds = [
            r#"{"a":[1,2.5e3,-0.1,true,false,null,"x\u0041\n"],"b":{"c":{}}}"#,
            r#"[{"k":"v"},[],[[]],"",0,-1E-2]"#,
            r#""plain \"quoted\" text""#,
        ];
        let alphabet = b"{}[]\":,.-+eE0123456789 \\ntrufalsu\x01\t";
        let mut rng = fastrand::Rng::with_seed(14);
        for _ in 0..20_000 {
            let mut text = seeds[rng.usize(..seeds.len())].as_bytes().to_vec();
            for _ in 0..rng.usize(1..4) {
                let i = rng.usize(..=text.len());
                match rng.u8(..3) {
                    0 if i < text.len() => drop(text.remove(i)),
                    1 if i < text.len() => text[i] = alphabet[rng.usize(..alphabet.len())],
                    _ => text.insert(i, alphabet[rng.usize(..alphabet.len())]),
                }
            }
            let Ok(text) = String::from_utf8(text) else {
                continue;
            };
            let serde = serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
            assert_eq!(check_json(&text).is_ok(), serde, "{text:?}");
        }
    }
}
