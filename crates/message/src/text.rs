//! Character classes and small nom parsers shared by the grammar.

use crate::ByteString;
use crate::out::put;
use nom::{
    IResult,
    error::{Error, ErrorKind as NomKind},
};

/// Result of a grammar parser over `&str`.
pub(crate) type Res<'a, T> = IResult<&'a str, T, Error<&'a str>>;

/// RFC 3261 `token` characters.
#[inline]
pub(crate) fn is_token_char(c: char) -> bool {
    c.is_ascii() && CLASS[c as usize] & TOKEN != 0
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
    // The hot path scans bytes through the class table; nom's `take_while1`
    // over chars is the reference it must agree with (see the tests).
    let n = run_of(s, TOKEN);
    if n == 0 { fail(s) } else { Ok((&s[n..], &s[..n])) }
}

/// `token` written with nom combinators, kept as the reference grammar.
#[cfg(test)]
pub(crate) fn token_nom(s: &str) -> Res<'_, &str> {
    use nom::Parser;
    nom::bytes::complete::take_while1(is_token_char).parse(s)
}

/// Leading decimal digits: (value saturated at u64 range, digit count).
#[inline]
fn digits(s: &str) -> (u64, usize) {
    let mut v: u64 = 0;
    let mut n = 0;
    for &c in s.as_bytes() {
        if !c.is_ascii_digit() {
            break;
        }
        v = v.saturating_mul(10).saturating_add(u64::from(c - b'0'));
        n += 1;
    }
    (v, n)
}

/// Decimal digits as u32 (overflow is an error).
pub(crate) fn number_u32(s: &str) -> Res<'_, u32> {
    let (v, n) = digits(s);
    match u32::try_from(v) {
        Ok(v) if n > 0 => Ok((&s[n..], v)),
        _ => fail(s),
    }
}

/// Decimal digits as u32, saturating at `u32::MAX` (RFC 3261 §20.19 for delta-seconds).
pub(crate) fn delta_seconds(s: &str) -> Res<'_, u32> {
    let (v, n) = digits(s);
    if n == 0 {
        return fail(s);
    }
    Ok((&s[n..], u32::try_from(v).unwrap_or(u32::MAX)))
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

/// A slice of `src` as a `ByteString`: held inline when short, shared
/// with the input buffer when long, copied if `s` is not inside `src`.
#[inline]
pub(crate) fn sub(src: &ByteString, s: &str) -> ByteString {
    src.slice_ref(s)
}

/// `s` without leading spaces and tabs.
#[inline]
pub(crate) fn trim_ws_start(s: &str) -> &str {
    let b = s.as_bytes();
    // Usually there is none: answer that without slicing.
    if !matches!(b.first(), Some(b' ' | b'\t')) {
        return s;
    }
    let mut i = 1;
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    &s[i..]
}

/// Byte-level token test.
#[inline]
pub(crate) fn is_token_byte(c: u8) -> bool {
    CLASS[c as usize] & TOKEN != 0
}

/// Character classes of RFC 3261 §25.1, one bit each, for table lookups.
pub(crate) const TOKEN: u16 = 1;
/// `unreserved`.
pub(crate) const UNRESERVED: u16 = 2;
/// `user` characters (unreserved, escaped, user-unreserved).
pub(crate) const USER: u16 = 4;
/// `password` characters.
pub(crate) const PASSWORD: u16 = 8;
/// `paramchar` (URI parameters).
pub(crate) const PARAMCHAR: u16 = 16;
/// `hnv-unreserved` plus unreserved (URI headers).
pub(crate) const HNV: u16 = 32;
/// Host name characters.
pub(crate) const HOSTCH: u16 = 64;
/// Generic parameter values: token plus host characters.
pub(crate) const GENVALUE: u16 = 128;
/// `word` characters (Call-ID).
pub(crate) const WORD: u16 = 256;

const fn class_of(c: u8) -> u16 {
    let alnum = c.is_ascii_alphanumeric();
    let mut m = 0;
    if alnum || matches!(c, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~') {
        m |= TOKEN | GENVALUE;
    }
    if matches!(c, b':' | b'[' | b']') {
        m |= GENVALUE;
    }
    let unreserved = alnum || matches!(c, b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')');
    if unreserved {
        m |= UNRESERVED | USER | PASSWORD | PARAMCHAR | HNV;
    }
    if matches!(c, b'%' | b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/') {
        m |= USER;
    }
    if matches!(c, b'%' | b'&' | b'=' | b'+' | b'$' | b',') {
        m |= PASSWORD;
    }
    if matches!(c, b'%' | b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$') {
        m |= PARAMCHAR;
    }
    if matches!(c, b'%' | b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$') {
        m |= HNV;
    }
    if alnum || c == b'-' || c == b'.' {
        m |= HOSTCH;
    }
    if m & TOKEN != 0
        || matches!(c, b'(' | b')' | b'<' | b'>' | b':' | b'\\' | b'"' | b'/' | b'[' | b']' | b'?' | b'{' | b'}')
    {
        m |= WORD;
    }
    m
}

const fn build_classes() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = class_of(i as u8);
        i += 1;
    }
    t
}

/// The class bits of every byte.
pub(crate) static CLASS: [u16; 256] = build_classes();

/// Whether every byte of `s` is in `class`.
#[inline]
pub(crate) fn all_in(s: &str, class: u16) -> bool {
    s.bytes().all(|b| CLASS[b as usize] & class != 0)
}

/// Length of the leading run of `s` in `class`.
#[inline]
pub(crate) fn run_of(s: &str, class: u16) -> usize {
    s.bytes().position(|b| CLASS[b as usize] & class == 0).unwrap_or(s.len())
}

/// [`run_of`] for runs that are usually long (a Call-ID): eight bytes per
/// step while all are in the class, then byte by byte.
pub(crate) fn long_run_of(s: &str, class: u16) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(c) = b.get(i..i + 8) {
        let all = CLASS[c[0] as usize]
            & CLASS[c[1] as usize]
            & CLASS[c[2] as usize]
            & CLASS[c[3] as usize]
            & CLASS[c[4] as usize]
            & CLASS[c[5] as usize]
            & CLASS[c[6] as usize]
            & CLASS[c[7] as usize];
        if all & class == 0 {
            break;
        }
        i += 8;
    }
    b[i..].iter().position(|&c| CLASS[c as usize] & class == 0).map_or(b.len(), |p| i + p)
}

/// Position of byte `c` in `s`.
#[inline]
pub(crate) fn find_byte(s: &str, c: u8) -> Option<usize> {
    s.bytes().position(|b| b == c)
}

/// Position of the first `c` in `b`, eight bytes at a time: for the short
/// runs where it is used (a header name before its colon, a status line, a
/// URI inside `<...>`) it measured cheaper than a call to `memchr`, whose
/// set-up costs more than such a run takes. Line ends stay with `memchr`,
/// which measured faster there.
#[inline]
pub(crate) fn find_u8(b: &[u8], c: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pat = LO * u64::from(c);
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        // Bytes equal to `c` become zero; the lowest zero byte sets the
        // lowest high bit (bits above a zero byte may be false hits, never
        // below it).
        let x = u64::from_le_bytes(w) ^ pat;
        let z = x.wrapping_sub(LO) & !x & HI;
        if z != 0 {
            return Some(i + (z.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..].iter().position(|&x| x == c).map(|p| i + p)
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
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    // Short names and tokens: a table-driven loop beats the library's
    // general case-insensitive comparison.
    let mut diff = 0u8;
    for i in 0..a.len() {
        diff |= LOWER[usize::from(a[i])] ^ LOWER[usize::from(b[i])];
    }
    diff == 0
}

/// ASCII lower-casing as a table.
pub(crate) static LOWER: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u8).to_ascii_lowercase();
        i += 1;
    }
    t
};

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
    put(out, buf.format(v).as_bytes());
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
    fn token_matches_nom_reference() {
        for s in ["abc;x", "a.b-c!%*_+`'~ rest", "", ";x", "é", "tag=1", "z9hG4bK776asdhds;rport"] {
            assert_eq!(token(s).ok(), token_nom(s).ok(), "{s:?}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(number_u32("123 x"), Ok((" x", 123)));
        assert!(number_u32("4294967296").is_err());
        assert_eq!(delta_seconds("99999999999;x"), Ok((";x", u32::MAX)));
        assert!(delta_seconds("x").is_err());
    }

    #[test]
    fn percent() {
        assert_eq!(&*percent_decode("a%40b"), b"a@b");
        assert_eq!(&*percent_decode("a%4"), b"a%4");
        assert_eq!(&*percent_decode("%"), b"%");
    }
}
