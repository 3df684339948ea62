//! [`ByteString`]: an immutable UTF-8 string that is either stored inline
//! (short strings) or shares a reference-counted buffer (long ones).
//!
//! Most strings in a SIP message are short: parameter names and values,
//! tags, branches, user parts, host names, display names. Holding those
//! inline means parsing, cloning and dropping them touches no reference
//! count (an atomic operation on every clone and drop of a shared slice).
//! Longer strings (Call-IDs, long URIs) stay zero-copy slices of the
//! received datagram.

// The one place in the crate with `unsafe`: turning bytes that are known to
// be UTF-8 back into `&str` without checking them again on every access.
#![allow(unsafe_code)]

use std::{borrow::Borrow, cmp::Ordering, fmt, hash, ops::Deref};

use bytes::Bytes;

/// Longest string held inline. The inline form has to leave alone the
/// eight bytes where `Bytes` keeps the (never null) pointer that tells the
/// two forms apart, which leaves 24 of the 32: 23 bytes and a length.
const INLINE: usize = 23;

#[derive(Clone)]
enum Repr {
    /// Three words, little-endian in memory: bytes 0..23 hold the text
    /// (zero past its end, valid UTF-8 up to it), byte 23 its length.
    /// Words rather than a byte array so that a string is assembled in
    /// registers and stored whole: built byte by byte on the stack and read
    /// back as words, it stalled the CPU's store forwarding on every parse.
    Inline([u64; 3]),
    /// The whole of the `Bytes` is valid UTF-8.
    Shared(Bytes),
}

/// Eight bytes of `b` from `at`, little-endian.
#[inline(always)]
fn le64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Four bytes of `b` from `at`, little-endian.
#[inline(always)]
fn le32(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u64::from(u32::from_le_bytes(w))
}

/// Whether `b` is UTF-8: the check every received message goes through
/// whole, with SIMD (simdutf8 picks AVX2 or SSE4.2 at run time): about a
/// tenth of the instructions of the standard library's check on text that
/// is nearly all ASCII.
#[inline]
pub(crate) fn is_utf8(b: &[u8]) -> bool {
    simdutf8::basic::from_utf8(b).is_ok()
}

/// The inline words for `b`, at most [`INLINE`] bytes long: a few
/// overlapping fixed-size loads and shifts, no loop and no `memcpy` call.
#[inline(always)]
fn inline_words(b: &[u8]) -> [u64; 3] {
    let n = b.len();
    debug_assert!(n <= INLINE);
    // The last eight bytes of a string of 8 < n <= 16 (or 16 < n <= 23)
    // bytes, shifted so that only the ones past the first eight (or
    // sixteen) remain; the shift is split in two so that it stays below
    // 64 when nothing remains (n = 8 or n = 16).
    let (d0, d1, d2) = if n >= 16 {
        (le64(b, 0), le64(b, 8), (le64(b, n - 8) >> 1) >> (8 * (24 - n) - 1))
    } else if n >= 8 {
        (le64(b, 0), (le64(b, n - 8) >> 1) >> (8 * (16 - n) - 1), 0)
    } else if n >= 4 {
        (le32(b, 0) | (le32(b, n - 4) << (8 * (n - 4))), 0, 0)
    } else if n > 0 {
        let (a, m, z) = (u64::from(b[0]), u64::from(b[n / 2]), u64::from(b[n - 1]));
        (a | (m << (8 * (n / 2))) | (z << (8 * (n - 1))), 0, 0)
    } else {
        (0, 0, 0)
    };
    [d0.to_le(), d1.to_le(), (d2 | ((n as u64) << 56)).to_le()]
}

/// An immutable, cheaply cloned UTF-8 string.
///
/// Strings of up to 23 bytes are stored inline (no allocation, no reference
/// count); longer ones share a [`Bytes`] buffer, so slices of a received
/// message are not copied. Dereferences to `str`; compares, orders and
/// hashes as its text, whatever its storage.
#[derive(Clone)]
pub struct ByteString(Repr);

impl ByteString {
    /// A copy that keeps no other buffer alive: a short string is inline
    /// anyway, a long one is copied out of the buffer it shares (a received
    /// datagram, say). For values kept long after the message they came in.
    pub fn detached(&self) -> ByteString {
        match &self.0 {
            Repr::Inline(_) => self.clone(),
            Repr::Shared(b) => ByteString(Repr::Shared(Bytes::copy_from_slice(b))),
        }
    }

    /// An IP address as text, IPv6 without brackets (the form of a Via
    /// `received` value); an IPv4 address needs no formatter and no heap.
    pub fn from_ip(ip: std::net::IpAddr) -> ByteString {
        match ip {
            std::net::IpAddr::V4(a) => {
                let mut buf = [0u8; 15];
                let n = crate::uri::ipv4_digits(&a, &mut buf);
                ByteString::inline_ascii(&buf[..n])
            }
            std::net::IpAddr::V6(a) => ByteString::from(a.to_string()),
        }
    }

    /// For a string of at most 23 bytes, its inline form as three words
    /// (whatever its storage): equal texts give equal words, so a key type
    /// can hash them instead of the bytes. Reading the words of an inline
    /// string reads back exactly the stores that built it, where hashing
    /// its bytes from an odd offset stalled on them. `None` when longer.
    #[inline]
    pub fn short_words(&self) -> Option<[u64; 3]> {
        match &self.0 {
            Repr::Inline(w) => Some(*w),
            Repr::Shared(b) if b.len() <= INLINE => Some(inline_words(b)),
            Repr::Shared(_) => None,
        }
    }

    /// `a.b.c.d` or `a.b.c.d:port`, held inline (a Via sent-by).
    pub(crate) fn from_ipv4_port(a: &std::net::Ipv4Addr, port: Option<u16>) -> ByteString {
        // "255.255.255.255:65535" is 21 bytes: inline.
        let mut buf = [0u8; 21];
        let mut ip = [0u8; 15];
        let mut n = crate::uri::ipv4_digits(a, &mut ip);
        buf[..15].copy_from_slice(&ip);
        if let Some(p) = port {
            let mut d = [0u8; 10];
            let i = crate::uri::decimal_digits(u32::from(p), &mut d);
            buf[n] = b':';
            buf[n + 1..n + 1 + d.len() - i].copy_from_slice(&d[i..]);
            n += 1 + d.len() - i;
        }
        ByteString::inline_ascii(&buf[..n])
    }

    /// A number in decimal, held inline.
    pub fn from_u32(v: u32) -> ByteString {
        let mut buf = [0u8; 10];
        let i = crate::uri::decimal_digits(v, &mut buf);
        ByteString::inline_ascii(&buf[i..])
    }

    /// Inline storage for at most [`INLINE`] ASCII bytes.
    fn inline_ascii(b: &[u8]) -> ByteString {
        debug_assert!(b.len() <= INLINE && b.is_ascii());
        ByteString(Repr::Inline(inline_words(&b[..b.len().min(INLINE)])))
    }

    /// Makes this string keep no other buffer alive, in place: only a long
    /// string that shares a buffer is copied (see [`ByteString::detached`]).
    pub fn detach(&mut self) {
        if let Repr::Shared(b) = &self.0 {
            self.0 = Repr::Shared(Bytes::copy_from_slice(b));
        }
    }

    /// The empty string.
    pub const fn new() -> Self {
        ByteString(Repr::Inline([0; 3]))
    }

    /// A string from a `'static` literal (inline when short, never copied otherwise).
    #[inline]
    pub const fn from_static(s: &'static str) -> Self {
        let b = s.as_bytes();
        if b.len() <= INLINE {
            let mut w = [0u64; 3];
            let mut i = 0;
            while i < b.len() {
                w[i / 8] |= (b[i] as u64) << (8 * (i % 8));
                i += 1;
            }
            // `b.len() <= 23`, so it fits in the top byte.
            w[2] |= (b.len() as u64) << 56;
            ByteString(Repr::Inline([w[0].to_le(), w[1].to_le(), w[2].to_le()]))
        } else {
            ByteString(Repr::Shared(Bytes::from_static(b)))
        }
    }

    /// [`ByteString::from_static`] for a text chosen at run time (a reason
    /// phrase from a table): short ones are built in registers rather than
    /// by the byte loop a `const fn` has to use.
    #[inline]
    pub(crate) fn from_static_at_run_time(s: &'static str) -> Self {
        ByteString::inline(s).unwrap_or_else(|| ByteString(Repr::Shared(Bytes::from_static(s.as_bytes()))))
    }

    #[inline(always)]
    fn inline(s: &str) -> Option<Self> {
        if s.len() > INLINE {
            return None;
        }
        Some(ByteString(Repr::Inline(inline_words(s.as_bytes()))))
    }

    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        let bytes: &[u8] = match &self.0 {
            Repr::Inline(w) => {
                let len = (u64::from_le(w[2]) >> 56) as usize;
                // SAFETY: the three words are 24 initialised bytes and
                // `len <= 23` (every constructor stores at most INLINE).
                unsafe { std::slice::from_raw_parts(w.as_ptr().cast::<u8>(), len.min(INLINE)) }
            }
            Repr::Shared(b) => b,
        };
        // SAFETY: every constructor stores valid UTF-8 only: `&str` and
        // `String` inputs, `Bytes` checked by `from_utf8`, and sub-slices
        // taken from a `&str` (so on character boundaries).
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    /// The text as bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.as_str().as_bytes()
    }

    /// The text as a [`Bytes`] (shares the buffer of a long string, copies a short one).
    pub fn into_bytes(self) -> Bytes {
        match self.0 {
            Repr::Inline(_) => Bytes::copy_from_slice(self.as_bytes()),
            Repr::Shared(b) => b,
        }
    }

    /// `subset`, which must lie inside `self`, without copying a long one.
    /// A string that does not lie inside `self` is copied.
    #[inline(always)]
    pub fn slice_ref(&self, subset: &str) -> Self {
        if let Some(s) = Self::inline(subset) {
            return s;
        }
        match &self.0 {
            Repr::Shared(b) => {
                let base = b.as_ptr() as usize;
                let p = subset.as_ptr() as usize;
                if p >= base && p + subset.len() <= base + b.len() {
                    ByteString(Repr::Shared(b.slice(p - base..p - base + subset.len())))
                } else {
                    ByteString::from(subset)
                }
            }
            Repr::Inline(_) => ByteString::from(subset),
        }
    }
}

impl Default for ByteString {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for ByteString {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ByteString {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for ByteString {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<str> for ByteString {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for ByteString {
    #[inline]
    fn from(s: &str) -> Self {
        Self::inline(s).unwrap_or_else(|| ByteString(Repr::Shared(Bytes::copy_from_slice(s.as_bytes()))))
    }
}

impl From<&String> for ByteString {
    fn from(s: &String) -> Self {
        ByteString::from(s.as_str())
    }
}

impl From<String> for ByteString {
    fn from(s: String) -> Self {
        Self::inline(&s).unwrap_or_else(|| ByteString(Repr::Shared(Bytes::from(s))))
    }
}

impl From<Box<str>> for ByteString {
    fn from(s: Box<str>) -> Self {
        ByteString::from(String::from(s))
    }
}

impl From<ByteString> for String {
    fn from(s: ByteString) -> Self {
        s.as_str().to_owned()
    }
}

impl ByteString {
    /// [`ByteString::try_from`] for a `Bytes`, giving the bytes back when
    /// they are not UTF-8 (so that the caller can still look at them).
    pub(crate) fn from_utf8_bytes(b: Bytes) -> Result<Self, Bytes> {
        if !is_utf8(&b) {
            return Err(b);
        }
        Ok(ByteString(Repr::Shared(b)))
    }

    /// Bytes `range` of the string as `Bytes`: a slice of the shared buffer,
    /// or a copy when the string is inline.
    #[inline]
    pub(crate) fn slice_bytes(&self, range: std::ops::Range<usize>) -> Bytes {
        match &self.0 {
            Repr::Inline(_) => Bytes::copy_from_slice(&self.as_bytes()[range]),
            Repr::Shared(b) => b.slice(range),
        }
    }
}

impl TryFrom<Bytes> for ByteString {
    type Error = std::str::Utf8Error;
    /// Checks that the bytes are UTF-8 and keeps them shared (never inlined:
    /// a long-lived source buffer that later slices borrow from).
    fn try_from(b: Bytes) -> Result<Self, Self::Error> {
        if !is_utf8(&b) {
            // The standard library's check, for where the error is.
            std::str::from_utf8(&b)?;
        }
        Ok(ByteString(Repr::Shared(b)))
    }
}

impl TryFrom<&[u8]> for ByteString {
    type Error = std::str::Utf8Error;
    fn try_from(b: &[u8]) -> Result<Self, Self::Error> {
        Ok(ByteString::from(std::str::from_utf8(b)?))
    }
}

impl TryFrom<Vec<u8>> for ByteString {
    type Error = std::string::FromUtf8Error;
    fn try_from(b: Vec<u8>) -> Result<Self, Self::Error> {
        Ok(ByteString::from(String::from_utf8(b)?))
    }
}

impl PartialEq for ByteString {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        // Two inline strings are equal when their words are: every
        // constructor leaves the bytes past the text zero, and the length
        // is in the last byte. (A short string may also be shared, so the
        // mixed case compares text.)
        if let (Repr::Inline(a), Repr::Inline(b)) = (&self.0, &other.0) {
            return a == b;
        }
        self.as_str() == other.as_str()
    }
}

impl Eq for ByteString {}

impl PartialEq<str> for ByteString {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ByteString {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for ByteString {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<ByteString> for str {
    fn eq(&self, other: &ByteString) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<ByteString> for &str {
    fn eq(&self, other: &ByteString) -> bool {
        *self == other.as_str()
    }
}

impl PartialOrd for ByteString {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByteString {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl hash::Hash for ByteString {
    fn hash<H: hash::Hasher>(&self, state: &mut H) {
        // As `str` hashes, so `Borrow<str>` lookups in maps work.
        self.as_str().hash(state);
    }
}

impl fmt::Debug for ByteString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ByteString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for ByteString {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn size_is_that_of_bytes() {
        assert_eq!(size_of::<ByteString>(), size_of::<Bytes>());
    }

    #[test]
    fn short_strings_are_inline_and_long_ones_share_the_buffer() {
        let src =
            ByteString::try_from(Bytes::from("a84b4c76e66710@pc33.atlanta.example.com tag=1928".to_owned())).unwrap();
        let long = src.slice_ref(&src[..39]);
        assert!(matches!(long.0, Repr::Shared(_)));
        assert_eq!(long.as_ptr(), src.as_ptr(), "a long slice is not copied");
        let short = src.slice_ref(&src[44..]);
        assert!(matches!(short.0, Repr::Inline(_)));
        assert_eq!(short, "1928");
        // Detached: the long one no longer shares the source, the short one is as it was.
        let d = long.detached();
        assert_eq!(d, long);
        assert_ne!(d.as_ptr(), src.as_ptr());
        assert_eq!(short.detached(), "1928");
        // Not inside the source: copied.
        let other = String::from("x").repeat(40);
        let copied = src.slice_ref(&other);
        assert_eq!(copied, other.as_str());
        assert_ne!(copied.as_ptr(), other.as_ptr());
    }

    #[test]
    fn equality_order_and_hash_follow_the_text_not_the_storage() {
        let text = "abcdefghijklmnopqrstuvwxyz0123456789";
        let shared = ByteString::try_from(Bytes::from_static(b"abc")).unwrap();
        let inline = ByteString::from("abc");
        assert_eq!(shared, inline);
        assert_eq!(ByteString::from("abd").cmp(&shared), Ordering::Greater);
        let mut m = HashMap::new();
        m.insert(shared, 1);
        assert_eq!(m.get("abc"), Some(&1));
        assert_eq!(ByteString::from(text), ByteString::from_static("abcdefghijklmnopqrstuvwxyz0123456789"));
        assert_eq!(ByteString::from(String::from(text)).len(), text.len());
        assert_eq!(ByteString::new(), "");
        assert_eq!(ByteString::from_static("branch"), "branch");
        assert_eq!(format!("{:?}", ByteString::from("a\"b")), "\"a\\\"b\"");
        assert_eq!(ByteString::from("é").into_bytes(), Bytes::from_static("é".as_bytes()));
    }

    #[test]
    fn every_inline_length_keeps_its_bytes() {
        let text = "abcdefghijklmnopqrstuvwxyz";
        for n in 0..=INLINE {
            let s = ByteString::from(&text[..n]);
            assert!(matches!(s.0, Repr::Inline(_)), "{n} bytes are inline");
            assert_eq!(s.as_str(), &text[..n], "{n} bytes");
            assert_eq!(ByteString::from_static(&text[..n]), s);
            let Repr::Inline(w) = s.0 else { unreachable!() };
            // Nothing past the text but its length in the last byte.
            let mut bytes = [0u8; 24];
            for (i, word) in w.iter().enumerate() {
                bytes[i * 8..i * 8 + 8].copy_from_slice(&u64::from_le(*word).to_le_bytes());
            }
            assert!(bytes[n..INLINE].iter().all(|&b| b == 0), "{n} bytes: zero after the text");
            assert_eq!(usize::from(bytes[INLINE]), n);
        }
        assert!(matches!(ByteString::from(&text[..INLINE + 1]).0, Repr::Shared(_)));
        // Equality of inline strings compares their words: the same for
        // every constructor, different for every other length or text.
        let source = ByteString::try_from(Bytes::from_static(b"abcdefghijklmnopqrstuvwxyz")).unwrap();
        for n in 0..=INLINE {
            let a = ByteString::from(&text[..n]);
            assert_eq!(source.slice_ref(&source[..n]), a);
            assert_eq!(ByteString::try_from(Bytes::copy_from_slice(&text.as_bytes()[..n])).unwrap(), a);
            for m in 0..=INLINE {
                let (same, other) =
                    (ByteString::from(&text[..m]), ByteString::from(&"bbcdefghijklmnopqrstuvwxyz"[..m]));
                assert_eq!(a == same, n == m, "{n} {m}");
                assert_eq!(a == other, n == 0 && m == 0, "{n} {m}");
            }
        }
        assert_ne!(ByteString::from("ab"), ByteString::from("ab\u{0}"));
        // Short words: the same for the same text, inline or shared.
        for n in 0..=INLINE {
            let inline = ByteString::from(&text[..n]);
            let shared = ByteString::try_from(Bytes::copy_from_slice(&text.as_bytes()[..n])).unwrap();
            assert!(inline.short_words().is_some());
            assert_eq!(inline.short_words(), shared.short_words(), "{n}");
            if n > 0 {
                assert_ne!(inline.short_words(), ByteString::from(&text[1..n + 1]).short_words(), "{n}");
            }
        }
        assert_eq!(ByteString::from(&text[..INLINE + 1]).short_words(), None);
        assert_eq!(ByteString::from_u32(4_294_967_295), "4294967295");
        assert_eq!(ByteString::from_ip([255, 255, 255, 255].into()), "255.255.255.255");
        assert_eq!(ByteString::from("é😀x"), "é😀x");
    }

    #[test]
    fn utf8_is_checked_at_the_boundary() {
        assert!(ByteString::try_from(Bytes::from_static(b"\xff")).is_err());
        assert!(ByteString::try_from(&b"\xc3"[..]).is_err());
        assert_eq!(ByteString::try_from(vec![0xc3, 0xa9]).unwrap(), "é");
    }
}
