//! A pull reader of JSON text for the hand-written readers of the wire (`core::wire`) and of
//! the lease (`lock::lease`): objects member by member, arrays, strings (escapes decoded,
//! borrowed when there are none), unsigned integers, booleans and null. For those types it
//! accepts exactly what serde_json accepts (tests/fuzz.rs `wire` holds it to that), and every
//! error names the member path and the byte offset. The wasm build carries no serde
//! deserializer: this is the one JSON reader there.

use std::borrow::Cow;
use std::fmt;

use super::json::{plain_words, value_end};

/// Why a text was refused: where (member path, byte offset) and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// Byte offset of the offending byte (the text's length at an unexpected end).
    pub offset: usize,
    /// The member path from the top (`records[3].hlc`); empty at the top level.
    pub path: String,
    /// What was wrong.
    pub reason: String,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

impl ReadError {
    /// The same error one level further out: `segment` is `name` or `[index]`.
    fn inside(mut self, segment: &str) -> ReadError {
        if !self.path.is_empty() && !self.path.starts_with('[') {
            self.path.insert(0, '.');
        }
        self.path.insert_str(0, segment);
        self
    }
}

/// Result of a read.
pub type Read<T> = Result<T, ReadError>;

/// The members a struct may have, and which of them it must have.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// Member names, in declaration order (a member's index is its bit in the masks).
    pub names: &'static [&'static str],
    /// Bit mask of the members that must be present.
    pub required: u32,
    /// Refuse members not in `names` (serde's `deny_unknown_fields`); else skip them.
    pub deny_unknown: bool,
}

/// A cursor over one JSON text.
#[derive(Debug)]
pub struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        Reader { text, at: 0 }
    }

    /// An error at the current offset.
    pub fn error(&self, reason: impl Into<String>) -> ReadError {
        ReadError {
            offset: self.at,
            path: String::new(),
            reason: reason.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Skips whitespace, then consumes `b` if it is next.
    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        let hit = self.peek() == Some(b);
        self.at += usize::from(hit);
        hit
    }

    fn expect(&mut self, b: u8, reason: &'static str) -> Read<()> {
        match self.eat(b) {
            true => Ok(()),
            false => Err(self.error(reason)),
        }
    }

    /// Only whitespace may follow the value read.
    pub fn end(&mut self) -> Read<()> {
        self.ws();
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("trailing characters")),
        }
    }

    /// An object: `member` reads each member's value, given its (unescaped) name. Errors get
    /// the name in their path. A repeated name reaches `member` again (maps keep the last).
    pub fn object(&mut self, member: &mut dyn FnMut(&mut Self, &str) -> Read<()>) -> Read<()> {
        self.expect(b'{', "expected an object")?;
        if self.eat(b'}') {
            return Ok(());
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a member name"));
            }
            let name = self.string()?;
            self.expect(b':', "expected `:`")?;
            member(self, &name).map_err(|e| e.inside(&name))?;
            if self.eat(b'}') {
                return Ok(());
            }
            self.expect(b',', "expected `,` or `}`")?;
        }
    }

    /// A struct's object: `member` reads the value of the member at index `i` of
    /// `fields.names`. Refuses a repeated member, a missing required one and (if denied) an
    /// unknown one, as serde's derive does.
    pub fn fields(
        &mut self,
        fields: Fields,
        member: &mut dyn FnMut(&mut Self, usize) -> Read<()>,
    ) -> Read<()> {
        let mut seen = 0u32;
        self.object(&mut |r, name| {
            let Some(i) = fields.names.iter().position(|n| *n == name) else {
                if fields.deny_unknown {
                    return Err(r.error(format!("unknown field `{name}`")));
                }
                return r.skip();
            };
            if seen & 1 << i != 0 {
                return Err(r.error(format!("duplicate field `{name}`")));
            }
            seen |= 1 << i;
            member(r, i)
        })?;
        match (0..fields.names.len()).find(|i| fields.required & !seen & 1 << i != 0) {
            Some(i) => Err(self.error(format!("missing field `{}`", fields.names[i]))),
            None => Ok(()),
        }
    }

    /// An array: `item` reads each element. Errors get `[index]` in their path.
    pub fn array(&mut self, item: &mut dyn FnMut(&mut Self) -> Read<()>) -> Read<()> {
        self.expect(b'[', "expected an array")?;
        if self.eat(b']') {
            return Ok(());
        }
        for i in 0usize.. {
            item(self).map_err(|e| e.inside(&format!("[{i}]")))?;
            if !self.eat(b',') {
                break;
            }
        }
        self.expect(b']', "expected `,` or `]`")
    }

    /// Skips one value of any type (an ignored member's).
    pub fn skip(&mut self) -> Read<()> {
        self.at = value_end(self.text, self.at).map_err(|e| ReadError {
            offset: e.offset,
            path: String::new(),
            reason: e.reason.into(),
        })?;
        Ok(())
    }

    /// `null` if it is next (consumed), for an `Option` member.
    pub fn null(&mut self) -> Read<bool> {
        self.ws();
        if self.peek() != Some(b'n') {
            return Ok(false);
        }
        self.word("null").map(|()| true)
    }

    fn word(&mut self, word: &str) -> Read<()> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(self.error("expected `true`, `false` or `null`"))
        }
    }

    /// `true` or `false`.
    pub fn bool(&mut self) -> Read<bool> {
        self.ws();
        match self.peek() {
            Some(b't') => self.word("true").map(|()| true),
            Some(b'f') => self.word("false").map(|()| false),
            _ => Err(self.error("expected a boolean")),
        }
    }

    /// A non-negative integer that fits `u64`, without fraction or exponent (serde_json reads
    /// anything else as a float or a negative number, which no unsigned field takes).
    pub fn u64(&mut self) -> Read<u64> {
        self.ws();
        let start = self.at;
        let bytes = self.text.as_bytes();
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        let digits = &bytes[start..self.at];
        if digits.is_empty() {
            self.at = start;
            return Err(self.error("expected an unsigned integer"));
        }
        if digits.len() > 1 && digits[0] == b'0' {
            self.at = start + 1;
            return Err(self.error("leading zero in a number"));
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return Err(self.error("expected an unsigned integer, not a fraction or exponent"));
        }
        digits
            .iter()
            .try_fold(0u64, |n, &d| {
                n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            })
            .ok_or_else(|| ReadError {
                offset: start,
                path: String::new(),
                reason: "integer out of range".into(),
            })
    }

    /// A `u64` that fits `u32`.
    pub fn u32(&mut self) -> Read<u32> {
        let start = self.at;
        let n = self.u64()?;
        u32::try_from(n).map_err(|_| ReadError {
            offset: start,
            path: String::new(),
            reason: format!("{n} out of range for u32"),
        })
    }

    /// A string, its escapes decoded; borrowed from the text when it has none.
    pub fn string(&mut self) -> Read<Cow<'a, str>> {
        self.expect(b'"', "expected a string")?;
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut owned: Option<String> = None;
        let mut plain = start;
        loop {
            // Most bytes need no decision: skip them eight at a time, then byte by byte.
            self.at += plain_words(&bytes[self.at..]);
            while let Some(&b) = bytes.get(self.at) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.at += 1;
            }
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    let tail = &self.text[plain..self.at];
                    self.at += 1;
                    return Ok(match owned {
                        None => Cow::Borrowed(tail),
                        Some(mut s) => {
                            s.push_str(tail);
                            Cow::Owned(s)
                        }
                    });
                }
                Some(b'\\') => {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(&self.text[plain..self.at]);
                    self.at += 1;
                    let c = self.escape()?;
                    s.push(c);
                    plain = self.at;
                }
                Some(_) => return Err(self.error("control character in a string")),
            }
        }
    }

    /// The character of the escape after a backslash; a UTF-16 surrogate must be a pair.
    fn escape(&mut self) -> Read<char> {
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.at += 1;
                let unit = self.hex4()?;
                return match unit {
                    0xd800..=0xdbff => {
                        if !self.text[self.at..].starts_with("\\u") {
                            return Err(self.error("lone leading surrogate in an escape"));
                        }
                        self.at += 2;
                        let low = self.hex4()?;
                        if !(0xdc00..=0xdfff).contains(&low) {
                            return Err(self.error("lone leading surrogate in an escape"));
                        }
                        let code = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
                        char::from_u32(code).ok_or_else(|| self.error("invalid escape"))
                    }
                    0xdc00..=0xdfff => Err(self.error("lone trailing surrogate in an escape")),
                    _ => char::from_u32(unit).ok_or_else(|| self.error("invalid escape")),
                };
            }
            _ => return Err(self.error("invalid escape")),
        };
        self.at += 1;
        Ok(c)
    }

    fn hex4(&mut self) -> Read<u32> {
        let digits = self.text.as_bytes().get(self.at..self.at + 4);
        let value = digits.and_then(|d| {
            d.iter()
                .try_fold(0u32, |n, &b| Some(n << 4 | char::from(b).to_digit(16)?))
        });
        match value {
            Some(v) => {
                self.at += 4;
                Ok(v)
            }
            None => Err(self.error("expected 4 hex digits after `\\u`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(text: &str) -> Read<String> {
        let mut r = Reader::new(text);
        let s = r.string()?;
        r.end()?;
        Ok(s.into_owned())
    }

    #[test]
    fn strings_decode_like_serde_json() {
        for text in [
            r#""""#,
            r#""plain""#,
            r#""a\"b\\c\/d\b\f\n\r\t""#,
            r#""\u00e9\u20AC\ud83d\ude00""#,
            r#""\u0000""#,
            "\"é😀\"",
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud800\u0041""#,
            r#""\ud800x""#,
            r#""\u12""#,
            r#""\x""#,
            "\"a\u{1}\"",
            "\"open",
        ] {
            let serde = serde_json::from_str::<String>(text).ok();
            assert_eq!(string(text).ok(), serde, "{text}");
        }
        let mut r = Reader::new(r#""no escapes""#);
        assert!(matches!(r.string(), Ok(Cow::Borrowed("no escapes"))));
    }

    #[test]
    fn a_special_byte_at_every_offset_of_a_long_string_is_seen() {
        // Plain bytes are skipped eight at a time: every offset within and across words.
        for len in 0..40 {
            for at in 0..len {
                for special in [
                    "\"",
                    "\\",
                    "\\n",
                    "\\u00e9",
                    "\\ud83d\\ude00",
                    "\u{1}",
                    "\u{7f}",
                    "é",
                ] {
                    let mut body = "a".repeat(len);
                    body.replace_range(at..at + 1, special);
                    let text = format!("\"{body}\"");
                    let serde = serde_json::from_str::<String>(&text).ok();
                    assert_eq!(string(&text).ok(), serde, "{text:?}");
                }
            }
        }
    }

    #[test]
    fn integers_are_unsigned_and_exact() {
        for text in [
            "0",
            "7",
            "4294967295",
            "4294967296",
            "18446744073709551615",
            "18446744073709551616",
            "-0",
            "-1",
            "01",
            "1.0",
            "1e3",
            "1E3",
            " 5 ",
            "",
        ] {
            let mut r = Reader::new(text);
            let got = r.u64().and_then(|n| r.end().map(|()| n)).ok();
            assert_eq!(got, serde_json::from_str::<u64>(text).ok(), "{text:?}");
            let mut r = Reader::new(text);
            let got = r.u32().and_then(|n| r.end().map(|()| n)).ok();
            assert_eq!(got, serde_json::from_str::<u32>(text).ok(), "{text:?}");
        }
    }

    #[test]
    fn errors_name_the_member_path_and_the_offset() {
        let fields = Fields {
            names: &["a", "b"],
            required: 0b01,
            deny_unknown: true,
        };
        let read = |text: &str| {
            let mut r = Reader::new(text);
            r.fields(fields, &mut |r, i| match i {
                0 => r.u32().map(drop),
                _ => r.array(&mut |r| r.bool().map(drop)),
            })
        };
        read(r#"{"a":1,"b":[true,false]}"#).unwrap();
        let err = read(r#"{"a":1,"b":[true,7]}"#).unwrap_err();
        assert_eq!(err.to_string(), "b[1]: expected a boolean at byte 17");
        let err = read(r#"{"b":[]}"#).unwrap_err();
        assert_eq!(err.to_string(), "missing field `a` at byte 8");
        let err = read(r#"{"a":1,"a":2}"#).unwrap_err();
        assert!(
            err.to_string().starts_with("a: duplicate field `a`"),
            "{err}"
        );
        let err = read(r#"{"a":1,"c":2}"#).unwrap_err();
        assert!(err.to_string().starts_with("c: unknown field `c`"), "{err}");
        let lenient = Fields {
            deny_unknown: false,
            ..fields
        };
        let mut r = Reader::new(r#"{"c":{"x":[1,"]"]},"a":3}"#);
        r.fields(lenient, &mut |r, _| r.u32().map(drop)).unwrap();
        r.end().unwrap();
    }
}
