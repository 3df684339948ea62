//! Character classes and small nom parsers shared by the grammar.

use bytestring::ByteString;
use nom::{
    IResult, Parser,
    bytes::complete::take_while1,
    error::{Error, ErrorKind as NomKind},
};

/// Result of a grammar parser over `&str`.
pub(crate) type Res<'a, T> = IResult<&'a str, T, Error<&'a str>>;

/// RFC 3261 `token` characters.
#[inline]
pub(crate) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '!' | '%' | '*' | '_' | '+' | '`' | '\'' | '~')
}

/// RFC 3261 `word` characters (Call-ID).
#[inline]
pub(crate) fn is_word_char(c: char) -> bool {
    is_token_char(c) || matches!(c, '(' | ')' | '<' | '>' | ':' | '\\' | '"' | '/' | '[' | ']' | '?' | '{' | '}')
}

/// Characters allowed in a generic parameter value that is not quoted:
/// token characters plus those of `host` (IPv6 references and bare IPv6
/// addresses, as RFC 5118 shows in `received`).
#[inline]
pub(crate) fn is_gen_value_char(c: char) -> bool {
    is_token_char(c) || matches!(c, ':' | '[' | ']')
}

#[inline]
pub(crate) fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

pub(crate) fn fail<T>(s: &str) -> Res<'_, T> {
    Err(nom::Err::Error(Error::new(s, NomKind::Verify)))
}

#[inline]
pub(crate) fn token(s: &str) -> Res<'_, &str> {
    take_while1(is_token_char).parse(s)
}

/// Decimal digits as u32 (overflow is an error).
pub(crate) fn number_u32(s: &str) -> Res<'_, u32> {
    let (rest, digits) = take_while1(|c: char| c.is_ascii_digit()).parse(s)?;
    match digits.parse::<u32>() {
        Ok(v) => Ok((rest, v)),
        Err(_) => fail(s),
    }
}

/// Decimal digits as u32, saturating at `u32::MAX` (RFC 3261 §20.19 for delta-seconds).
pub(crate) fn delta_seconds(s: &str) -> Res<'_, u32> {
    let (rest, digits) = take_while1(|c: char| c.is_ascii_digit()).parse(s)?;
    Ok((rest, digits.parse::<u32>().unwrap_or(u32::MAX)))
}

/// A quoted string. Returns the raw text between the quotes (escapes intact).
pub(crate) fn quoted_raw(s: &str) -> Res<'_, &str> {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'"') {
        return fail(s);
    }
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Ok((&s[i + 1..], &s[1..i])),
            b'\\' => {
                // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
                match bytes.get(i + 1) {
                    Some(b) if *b < 0x80 && *b != b'\r' && *b != b'\n' => i += 2,
                    _ => return fail(&s[i..]),
                }
            }
            b'\r' | b'\n' => return fail(&s[i..]),
            _ => i += 1,
        }
    }
    fail(&s[i..])
}

/// Removes quoted-pair escapes.
pub(crate) fn unescape_quoted(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut it = raw.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            if let Some(n) = it.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Turns a slice of `src` into a shared `ByteString` without copying when
/// possible (copies if `s` does not lie inside `src`).
#[inline]
pub(crate) fn sub(src: &ByteString, s: &str) -> ByteString {
    let base = src.as_ptr() as usize;
    let p = s.as_ptr() as usize;
    if s.is_empty() {
        return ByteString::new();
    }
    if p >= base && p + s.len() <= base + src.len() { src.slice_ref(s) } else { ByteString::from(s) }
}

/// A quoted string's content, unescaped, shared with `src` when it has no escapes.
pub(crate) fn quoted_value(src: &ByteString, raw: &str) -> ByteString {
    if raw.contains('\\') { ByteString::from(unescape_quoted(raw)) } else { sub(src, raw) }
}

/// Writes `s` as a quoted string, escaping `"` and `\`.
pub(crate) fn write_quoted(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for b in s.bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// ASCII case-insensitive comparison.
#[inline]
pub(crate) fn eq_ic(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Decodes %-escapes (invalid escapes are kept as they are).
pub(crate) fn percent_decode(s: &str) -> std::borrow::Cow<'_, [u8]> {
    if !s.contains('%') {
        return std::borrow::Cow::Borrowed(s.as_bytes());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let h = (b[i + 1] as char).to_digit(16);
            let l = (b[i + 2] as char).to_digit(16);
            if let (Some(h), Some(l)) = (h, l) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

pub(crate) fn write_u32(out: &mut Vec<u8>, v: u32) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(v).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_with_escapes() {
        let (rest, raw) = quoted_raw(r#""a\"b" x"#).unwrap();
        assert_eq!(raw, r#"a\"b"#);
        assert_eq!(rest, " x");
        assert_eq!(unescape_quoted(raw), "a\"b");
        assert!(quoted_raw("\"open").is_err());
    }

    #[test]
    fn percent() {
        assert_eq!(&*percent_decode("a%40b"), b"a@b");
        assert_eq!(&*percent_decode("a%4"), b"a%4");
        assert_eq!(&*percent_decode("%"), b"%");
    }
}
