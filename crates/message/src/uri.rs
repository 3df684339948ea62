//! SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), with RFC 3261 §19.1.4 equality.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::ByteString;
use crate::out::put;

use crate::error::{ErrorKind, ParseError};
use crate::param::{Param, Params};
use crate::text::{
    CLASS, HNV, HOSTCH, PARAMCHAR, PASSWORD, UNRESERVED, USER, all_in, eq_ic, find_byte, percent_decode, run_of, sub,
};

/// A host: domain name, IPv4 address or IPv6 reference.
#[derive(Debug, Clone, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Host {
    /// A domain name, as written.
    Domain(ByteString),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (written `[...]` in URIs).
    Ipv6(Ipv6Addr),
}

impl PartialEq for Host {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Host::Domain(a), Host::Domain(b)) => eq_ic(a, b),
            (Host::Ipv4(a), Host::Ipv4(b)) => a == b,
            (Host::Ipv6(a), Host::Ipv6(b)) => a == b,
            _ => false,
        }
    }
}

impl std::hash::Hash for Host {
    /// Consistent with `PartialEq`: domain names hash case-insensitively.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            Host::Domain(d) => {
                0u8.hash(state);
                for b in d.bytes() {
                    b.to_ascii_lowercase().hash(state);
                }
            }
            Host::Ipv4(a) => {
                1u8.hash(state);
                a.hash(state);
            }
            Host::Ipv6(a) => {
                2u8.hash(state);
                a.hash(state);
            }
        }
    }
}

impl Host {
    /// [`Host::detached`] in place.
    pub fn detach(&mut self) {
        if let Host::Domain(d) = self {
            d.detach();
        }
    }

    /// A copy whose name keeps no received buffer alive (see [`ByteString::detached`]).
    pub fn detached(&self) -> Host {
        match self {
            Host::Domain(d) => Host::Domain(d.detached()),
            other => other.clone(),
        }
    }

    /// Parses a host: `[v6]`, dotted IPv4, or a host name. With `bare_v6`,
    /// an IPv6 address without brackets is accepted too (Via `received`).
    pub fn parse(s: &str) -> Result<Host, ErrorKind> {
        parse_host_str(s, false).map(|h| h.into_owned_host())
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        match self {
            Host::Domain(d) => put(out, d.as_bytes()),
            Host::Ipv4(a) => crate::out::put_ipv4(out, a),
            Host::Ipv6(a) => {
                use std::io::Write;
                out.push(b'[');
                let _ = write!(out, "{a}");
                out.push(b']');
            }
        }
    }
}

/// Writes `a` in dotted-quad form into `buf`; returns the length.
pub(crate) fn ipv4_digits(a: &std::net::Ipv4Addr, buf: &mut [u8; 15]) -> usize {
    // Each octet's digits come from a table (with a dot after them), copied
    // as four bytes: no division, no branch per digit. The last dot written
    // is not counted.
    let mut wide = [0u8; 19];
    let mut n = 0;
    for x in a.octets() {
        let (text, len) = OCTETS[usize::from(x)];
        wide[n..n + 4].copy_from_slice(&text);
        n += usize::from(len) + 1;
    }
    buf.copy_from_slice(&wide[..15]);
    n - 1
}

/// The decimal text of every octet followed by a dot, and its length without
/// the dot.
pub(crate) const OCTETS: [([u8; 4], u8); 256] = {
    let mut t = [([0u8; 4], 0u8); 256];
    let mut i = 0;
    while i < 256 {
        let x = i as u8;
        let (h, d, u) = (x / 100, (x / 10) % 10, x % 10);
        t[i] = if x >= 100 {
            ([b'0' + h, b'0' + d, b'0' + u, b'.'], 3)
        } else if x >= 10 {
            ([b'0' + d, b'0' + u, b'.', 0], 2)
        } else {
            ([b'0' + u, b'.', 0, 0], 1)
        };
        i += 1;
    }
    t
};

/// Writes `v` in decimal at the end of `buf`; returns where it starts.
pub(crate) fn decimal_digits(mut v: u32, buf: &mut [u8; 10]) -> usize {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return i;
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = Vec::new();
        self.write(&mut v);
        f.write_str(&String::from_utf8_lossy(&v))
    }
}

enum HostRef<'a> {
    Domain(&'a str),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl HostRef<'_> {
    fn into_owned_host(self) -> Host {
        match self {
            HostRef::Domain(d) => Host::Domain(ByteString::from(d)),
            HostRef::V4(a) => Host::Ipv4(a),
            HostRef::V6(a) => Host::Ipv6(a),
        }
    }
    fn into_host(self, src: &ByteString) -> Host {
        match self {
            HostRef::Domain(d) => Host::Domain(sub(src, d)),
            HostRef::V4(a) => Host::Ipv4(a),
            HostRef::V6(a) => Host::Ipv6(a),
        }
    }
}

fn parse_host_str(s: &str, bare_v6: bool) -> Result<HostRef<'_>, ErrorKind> {
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or(ErrorKind::InvalidUri)?;
        return inner.parse::<Ipv6Addr>().map(HostRef::V6).map_err(|_| ErrorKind::InvalidUri);
    }
    if s.is_empty() {
        return Err(ErrorKind::InvalidUri);
    }
    if bare_v6 && find_byte(s, b':').is_some() {
        return s.parse::<Ipv6Addr>().map(HostRef::V6).map_err(|_| ErrorKind::InvalidUri);
    }
    let b = s.as_bytes();
    if !b[0].is_ascii_digit() {
        // A host name: host characters, no empty label.
        let mut prev_dot = true;
        for &c in b {
            if CLASS[c as usize] & HOSTCH == 0 || (c == b'.' && prev_dot) {
                return Err(ErrorKind::InvalidUri);
            }
            prev_dot = c == b'.';
        }
        if b[0] == b'-' {
            return Err(ErrorKind::InvalidUri);
        }
        return Ok(HostRef::Domain(s));
    }
    // Starts with a digit: a dotted quad, or a name whose labels may start
    // with digits (RFC 1123) when a letter appears.
    let mut octets = [0u32; 4];
    let mut n = 0usize;
    let mut digits = 0usize;
    let mut quad = true;
    let mut prev_dot = false;
    for &c in b {
        if CLASS[c as usize] & HOSTCH == 0 || (c == b'.' && prev_dot) {
            return Err(ErrorKind::InvalidUri);
        }
        prev_dot = c == b'.';
        if !quad {
            continue;
        }
        if c == b'.' {
            n += 1;
            digits = 0;
            quad = n <= 3;
        } else if c.is_ascii_digit() && digits < 3 {
            octets[n] = octets[n] * 10 + u32::from(c - b'0');
            digits += 1;
        } else {
            quad = false;
        }
    }
    if quad {
        if n == 3 && digits > 0 && octets.iter().all(|o| *o < 256) {
            return Ok(HostRef::V4(Ipv4Addr::new(octets[0] as u8, octets[1] as u8, octets[2] as u8, octets[3] as u8)));
        }
        return Err(ErrorKind::InvalidUri);
    }
    if b.iter().all(|c| c.is_ascii_digit() || *c == b'.') {
        return Err(ErrorKind::InvalidUri);
    }
    Ok(HostRef::Domain(s))
}

/// Four decimal octets of one to three digits each, below 256, separated by
/// single dots (the caller has checked that only digits and dots occur and
/// that no label is empty except perhaps the last).
fn dotted_quad(b: &[u8]) -> Option<Ipv4Addr> {
    // Four groups of one to three digits, each at most 255, separated by
    // single dots, nothing after the fourth. The digits of a group are
    // read unrolled: one to three, no loop.
    let digit = |i: usize| b.get(i).map(|c| c.wrapping_sub(b'0')).filter(|d| *d <= 9).map(u32::from);
    let mut o = [0u8; 4];
    let mut i = 0;
    for (k, octet) in o.iter_mut().enumerate() {
        if k > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let mut v = digit(i)?;
        i += 1;
        if let Some(d) = digit(i) {
            v = v * 10 + d;
            i += 1;
            if let Some(d) = digit(i) {
                v = v * 10 + d;
                i += 1;
            }
        }
        *octet = u8::try_from(v).ok()?;
    }
    if i == b.len() { Some(Ipv4Addr::from(o)) } else { None }
}

/// Whether a host name has two dots in a row, eight bytes at a time
/// (windows overlapping by one byte, so pairs across them are seen).
#[inline]
fn has_empty_label(h: &[u8]) -> bool {
    const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HI: u64 = 0x8080_8080_8080_8080;
    let dots = |w: u64| {
        // The high bit of each byte that is '.', exactly.
        let x = w ^ 0x2e2e_2e2e_2e2e_2e2e;
        !(((x & LO7) + LO7) | x) & HI
    };
    let mut i = 0;
    while let Some(chunk) = h.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let d = dots(u64::from_le_bytes(w));
        if d & (d >> 8) != 0 {
            return true;
        }
        i += 7;
    }
    let tail = &h[i..];
    tail.iter().zip(tail.iter().skip(1)).any(|(&a, &b)| a == b'.' && b == b'.')
}

/// Parses a host with an optional `:port` (a Via sent-by or URI hostport).
/// Returns the host, the port and the unconsumed rest.
#[inline(always)]
pub(crate) fn parse_hostport<'a>(
    src: &ByteString,
    s: &'a str,
    bare_v6: bool,
) -> Result<(Host, Option<u16>, &'a str), ErrorKind> {
    let (host, rest) = if s.starts_with('[') {
        let end = find_byte(s, b']').ok_or(ErrorKind::InvalidUri)?;
        (parse_host_str(&s[..=end], bare_v6)?.into_host(src), &s[end + 1..])
    } else {
        // The extent of the host first (one table lookup per byte), then
        // the rules for what it holds: only digits and dots is a dotted
        // quad (checked by `dotted_quad`), anything else a name with no
        // empty label.
        let b = s.as_bytes();
        let i = b.iter().position(|&c| CLASS[c as usize] & HOSTCH == 0).unwrap_or(b.len());
        let h = &b[..i];
        if i == 0 || h[0] == b'-' {
            return Err(ErrorKind::InvalidUri);
        }
        // A dotted quad is tried first when the host starts with a digit;
        // digits and dots that are not one are an error, not a name.
        let quad = if h[0].is_ascii_digit() { dotted_quad(h) } else { None };
        let host = match quad {
            Some(a) => Host::Ipv4(a),
            None => {
                let numeric = h[0].is_ascii_digit() && h.iter().all(|&c| c == b'.' || c.is_ascii_digit());
                if numeric || h[0] == b'.' || has_empty_label(h) {
                    return Err(ErrorKind::InvalidUri);
                }
                Host::Domain(sub(src, &s[..i]))
            }
        };
        (host, &s[i..])
    };
    if let Some(p) = rest.strip_prefix(':') {
        let end = p.bytes().position(|c| !c.is_ascii_digit()).unwrap_or(p.len());
        if end == 0 || end > 5 {
            return Err(ErrorKind::InvalidUri);
        }
        let port = p[..end].bytes().fold(0u32, |a, c| a * 10 + u32::from(c - b'0'));
        let port = u16::try_from(port).map_err(|_| ErrorKind::InvalidUri)?;
        Ok((host, Some(port), &p[end..]))
    } else {
        Ok((host, None, rest))
    }
}

/// A `sip:` or `sips:` URI. User and password are kept as written (with
/// their %-escapes); comparison decodes them.
///
/// The password and the URI headers are rare (RFC 3261 §19.1.1 deprecates
/// the one; the other appears in Refer-To and Contact redirections), so
/// they live out of line ([`SipUri::password`], [`SipUri::headers`]): every
/// From, To, Contact, Route and Request-URI is 56 bytes smaller for it.
#[derive(Debug, Clone, Eq)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// User part, as written.
    pub user: Option<ByteString>,
    /// Host.
    pub host: Host,
    /// Port, if explicit.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`).
    pub params: Params,
    /// The password and URI headers, when there are any.
    rare: Option<Box<RareParts>>,
}

/// The seldom-present parts of a SIP URI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RareParts {
    password: Option<ByteString>,
    headers: Params,
}

/// What [`SipUri::headers`] answers for a URI without headers.
static NO_HEADERS: Params = Params::new();

#[cfg(feature = "serde")]
impl serde::Serialize for SipUri {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("SipUri", 7)?;
        st.serialize_field("secure", &self.secure)?;
        st.serialize_field("user", &self.user)?;
        st.serialize_field("password", &self.password())?;
        st.serialize_field("host", &self.host)?;
        st.serialize_field("port", &self.port)?;
        st.serialize_field("params", &self.params)?;
        st.serialize_field("headers", self.headers())?;
        st.end()
    }
}

impl SipUri {
    /// A `sip:` URI for `host`.
    pub fn new(host: Host) -> Self {
        SipUri { secure: false, user: None, host, port: None, params: Params::new(), rare: None }
    }

    /// Password, as written.
    pub fn password(&self) -> Option<&str> {
        self.rare.as_ref().and_then(|r| r.password.as_deref())
    }

    /// Sets (or, with `None`, removes) the password.
    pub fn set_password(&mut self, password: Option<ByteString>) {
        if password.is_some() || self.rare.is_some() {
            self.rare_mut().password = password;
            self.tidy();
        }
    }

    /// URI headers (`?Subject=x&...`), as name/value parameters.
    pub fn headers(&self) -> &Params {
        self.rare.as_ref().map_or(&NO_HEADERS, |r| &r.headers)
    }

    /// The URI headers, to change.
    pub fn headers_mut(&mut self) -> &mut Params {
        &mut self.rare_mut().headers
    }

    /// Replaces the URI headers (an empty list removes them).
    pub fn set_headers(&mut self, headers: Params) {
        if !headers.is_empty() || self.rare.is_some() {
            self.rare_mut().headers = headers;
            self.tidy();
        }
    }

    fn rare_mut(&mut self) -> &mut RareParts {
        self.rare.get_or_insert_with(Box::default)
    }

    /// Drops the out-of-line parts when they are all empty.
    fn tidy(&mut self) {
        if self.rare.as_ref().is_some_and(|r| r.password.is_none() && r.headers.is_empty()) {
            self.rare = None;
        }
    }

    /// The user part with %-escapes decoded.
    pub fn user_decoded(&self) -> Option<String> {
        self.user.as_deref().map(|u| String::from_utf8_lossy(&percent_decode(u)).into_owned())
    }

    /// The `transport` parameter.
    #[inline]
    pub fn transport(&self) -> Option<&str> {
        self.params.value("transport")
    }

    /// Whether the `lr` parameter is present (loose routing).
    pub fn lr(&self) -> bool {
        self.params.contains("lr")
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        put(out, if self.secure { b"sips:" } else { b"sip:" });
        if let Some(u) = &self.user {
            put(out, u.as_bytes());
            if let Some(p) = self.password() {
                out.push(b':');
                put(out, p.as_bytes());
            }
            out.push(b'@');
        }
        self.host.write(out);
        if let Some(p) = self.port {
            out.push(b':');
            crate::text::write_u32(out, p.into());
        }
        self.params.write(out, b';');
        let mut first = true;
        for h in self.headers().iter() {
            out.push(if first { b'?' } else { b'&' });
            first = false;
            put(out, h.name.as_bytes());
            out.push(b'=');
            if let Some(v) = &h.value {
                put(out, v.as_bytes());
            }
        }
    }
}

fn decoded_eq(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => percent_decode(a) == percent_decode(b),
        _ => false,
    }
}

fn param_values_eq(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => percent_decode(a).eq_ignore_ascii_case(&percent_decode(b)),
        _ => false,
    }
}

impl PartialEq for SipUri {
    /// RFC 3261 §19.1.4: user and password compare case-sensitively after
    /// decoding; host case-insensitively; an explicit port never equals an
    /// absent one; `user`, `ttl`, `method`, `maddr` and `transport` must match
    /// when either side has them; other parameters only when both have them;
    /// headers must all match, in any order.
    fn eq(&self, other: &Self) -> bool {
        if self.secure != other.secure
            || !decoded_eq(self.user.as_deref(), other.user.as_deref())
            || !decoded_eq(self.password(), other.password())
            || self.host != other.host
            || self.port != other.port
        {
            return false;
        }
        for special in ["user", "ttl", "method", "maddr", "transport"] {
            if self.params.contains(special) != other.params.contains(special) {
                return false;
            }
        }
        // Each parameter present on both sides must match (any value of a
        // repeated name may, so the comparison stays symmetric and reflexive).
        let params_match = |a: &Params, b: &Params| {
            a.iter().all(|p| {
                let mut same_name = b.iter().filter(|q| eq_ic(&q.name, &p.name)).peekable();
                same_name.peek().is_none() || same_name.any(|q| param_values_eq(p.value.as_deref(), q.value.as_deref()))
            })
        };
        if !params_match(&self.params, &other.params) || !params_match(&other.params, &self.params) {
            return false;
        }
        // Headers are never ignored: each must be present on the other side,
        // names case-insensitively and values after decoding.
        let headers_in = |a: &Params, b: &Params| {
            a.iter().all(|h| {
                b.iter().any(|o| {
                    eq_ic(&o.name, &h.name)
                        && percent_decode(h.value.as_deref().unwrap_or(""))
                            == percent_decode(o.value.as_deref().unwrap_or(""))
                })
            })
        };
        let (mine, theirs) = (self.headers(), other.headers());
        mine.len() == theirs.len() && headers_in(mine, theirs) && headers_in(theirs, mine)
    }
}

/// A `tel:` URI (RFC 3966).
#[derive(Debug, Clone, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TelUri {
    /// The number as written (`+1-201-555-0123`, or a local number).
    pub number: ByteString,
    /// Parameters (`;phone-context=...`, `;ext=...`).
    pub params: Params,
}

impl TelUri {
    /// Whether the number is global (starts with `+`).
    pub fn is_global(&self) -> bool {
        self.number.starts_with('+')
    }

    fn digits(&self) -> String {
        self.number.chars().filter(|c| !matches!(c, '-' | '.' | '(' | ')')).collect()
    }
}

impl PartialEq for TelUri {
    /// RFC 3966 §4: numbers compare without visual separators; parameters
    /// compare as unordered sets, names and values case-insensitively.
    fn eq(&self, other: &Self) -> bool {
        self.digits().eq_ignore_ascii_case(&other.digits())
            && self.params.len() == other.params.len()
            && self.params.iter().all(|p| {
                other.params.find(&p.name).is_some_and(|q| param_values_eq(p.value.as_deref(), q.value.as_deref()))
            })
    }
}

/// A URI: SIP/SIPS, tel, or any other absolute URI kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Uri {
    /// `sip:` or `sips:`.
    Sip(SipUri),
    /// `tel:`.
    Tel(TelUri),
    /// Another scheme (`http:`, `urn:`...), kept verbatim.
    Other(ByteString),
}

impl Uri {
    /// [`Uri::detached`] in place: only strings that share a received
    /// buffer are copied, nothing is rebuilt.
    pub fn detach(&mut self) {
        match self {
            Uri::Sip(u) => {
                if let Some(s) = &mut u.user {
                    s.detach();
                }
                u.host.detach();
                u.params.detach();
                if let Some(r) = &mut u.rare {
                    if let Some(p) = &mut r.password {
                        p.detach();
                    }
                    r.headers.detach();
                }
            }
            Uri::Tel(t) => {
                t.number.detach();
                t.params.detach();
            }
            Uri::Other(s) => s.detach(),
        }
    }

    /// A copy whose strings keep no received buffer alive (see
    /// [`ByteString::detached`]): for a URI kept long after its message.
    pub fn detached(&self) -> Uri {
        match self {
            Uri::Sip(u) => Uri::Sip(SipUri {
                secure: u.secure,
                user: u.user.as_ref().map(ByteString::detached),
                host: u.host.detached(),
                port: u.port,
                params: u.params.detached(),
                rare: u.rare.as_ref().map(|r| {
                    Box::new(RareParts {
                        password: r.password.as_ref().map(ByteString::detached),
                        headers: r.headers.detached(),
                    })
                }),
            }),
            Uri::Tel(t) => Uri::Tel(TelUri { number: t.number.detached(), params: t.params.detached() }),
            Uri::Other(s) => Uri::Other(s.detached()),
        }
    }

    /// Parses a full URI (with parameters and headers).
    pub fn parse(s: &str) -> Result<Uri, ParseError> {
        let src = ByteString::from(s);
        parse_uri(&src, &src, true).map_err(|k| ParseError::new(k, 0))
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }

    /// The scheme, lower-case for SIP/SIPS/tel.
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Tel(_) => "tel",
            Uri::Other(s) => s.split(':').next().unwrap_or(""),
        }
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        match self {
            Uri::Sip(u) => u.write(out),
            Uri::Tel(t) => {
                put(out, b"tel:");
                put(out, t.number.as_bytes());
                t.params.write(out, b';');
            }
            Uri::Other(s) => put(out, s.as_bytes()),
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = Vec::new();
        self.write(&mut v);
        f.write_str(&String::from_utf8_lossy(&v))
    }
}

impl std::str::FromStr for Uri {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uri::parse(s)
    }
}

fn valid_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() {
                return false;
            }
            if !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// Parses the whole of `s` (a slice of `src`) as a URI. With `full`, URI
/// parameters and headers are allowed (name-addr, Request-URI); without,
/// parsing stops before `;` and `?` (addr-spec in From/To/Contact), and the
/// rest must be empty.
#[inline(always)]
pub(crate) fn parse_uri(src: &ByteString, s: &str, full: bool) -> Result<Uri, ErrorKind> {
    // Fast path: `sip:` / `sips:` in any case.
    let b = s.as_bytes();
    if b.len() > 4 && b[..3].eq_ignore_ascii_case(b"sip") {
        if b[3] == b':' {
            return parse_sip_uri(src, &s[4..], false, full).map(Uri::Sip);
        }
        if b.len() > 5 && (b[3] | 0x20) == b's' && b[4] == b':' {
            return parse_sip_uri(src, &s[5..], true, full).map(Uri::Sip);
        }
    }
    let colon = find_byte(s, b':').ok_or(ErrorKind::InvalidUri)?;
    let scheme = &s[..colon];
    let rest = &s[colon + 1..];
    if scheme.is_empty()
        || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        || !scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return Err(ErrorKind::InvalidUri);
    }
    if eq_ic(scheme, "sip") || eq_ic(scheme, "sips") {
        parse_sip_uri(src, rest, scheme.len() == 4, full).map(Uri::Sip)
    } else if eq_ic(scheme, "tel") {
        let end = find_byte(rest, b';').unwrap_or(rest.len());
        let number = &rest[..end];
        if number.is_empty()
            || !number.bytes().all(|b| {
                b.is_ascii_hexdigit() || matches!(b, b'+' | b'-' | b'.' | b'(' | b')' | b'*' | b'#' | b'p' | b'w')
            })
        {
            return Err(ErrorKind::InvalidUri);
        }
        let params = uri_params(src, &rest[end..])?;
        Ok(Uri::Tel(TelUri { number: sub(src, number), params }))
    } else {
        if rest.is_empty() || rest.contains(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"') {
            return Err(ErrorKind::InvalidUri);
        }
        Ok(Uri::Other(sub(src, s)))
    }
}

fn uri_params(src: &ByteString, mut s: &str) -> Result<Params, ErrorKind> {
    let mut params = Vec::new();
    while let Some(r) = s.strip_prefix(';') {
        let end = r.bytes().position(|b| b == b';' || b == b'?').unwrap_or(r.len());
        let item = &r[..end];
        let (name, value) = match find_byte(item, b'=') {
            Some(eq) => (&item[..eq], Some(&item[eq + 1..])),
            None => (item, None),
        };
        if name.is_empty() || !all_in(name, PARAMCHAR) || !valid_escapes(name) {
            return Err(ErrorKind::InvalidUri);
        }
        if let Some(v) = value
            && (v.is_empty() || !all_in(v, PARAMCHAR) || !valid_escapes(v))
        {
            return Err(ErrorKind::InvalidUri);
        }
        params.push(Param { name: crate::text::sub(src, name), value: value.map(|v| sub(src, v)) });
        s = &r[end..];
    }
    if s.is_empty() { Ok(Params(params)) } else { Err(ErrorKind::InvalidUri) }
}

#[inline(always)]
fn parse_sip_uri(src: &ByteString, s: &str, secure: bool, full: bool) -> Result<SipUri, ErrorKind> {
    // Fast path for the user part: a run of unreserved characters ended by
    // '@' (no escape, no password, no ';' or '?' in it) is what the general
    // search below would find too, without its four scans.
    let n = run_of(s, UNRESERVED);
    let (user, password, hostpart) = if n > 0 && s.as_bytes().get(n) == Some(&b'@') {
        (Some(sub(src, &s[..n])), None, &s[n + 1..])
    } else {
        // userinfo: everything before the last '@' that precedes the hostport.
        // With `full`, the user part may hold ';' and '?', so find '@' first.
        let at = if full {
            find_byte(s, b'@')
        } else {
            let limit = s.bytes().position(|b| b == b';' || b == b'?').unwrap_or(s.len());
            find_byte(&s[..limit], b'@')
        };
        match at {
            Some(at) => {
                let info = &s[..at];
                let (user, pw) = match find_byte(info, b':') {
                    Some(c) => (&info[..c], Some(&info[c + 1..])),
                    None => (info, None),
                };
                if user.is_empty() || !all_in(user, USER) || (find_byte(user, b'%').is_some() && !valid_escapes(user)) {
                    return Err(ErrorKind::InvalidUri);
                }
                if let Some(pw) = pw
                    && (!all_in(pw, PASSWORD) || !valid_escapes(pw))
                {
                    return Err(ErrorKind::InvalidUri);
                }
                (Some(sub(src, user)), pw.map(|p| sub(src, p)), &s[at + 1..])
            }
            None => (None, None, s),
        }
    };
    let (host, port, rest) = parse_hostport(src, hostpart, false)?;
    if rest.is_empty() {
        // No parameters and no headers (what either branch below makes of
        // an empty rest).
        let rare = password.map(|password| Box::new(RareParts { password: Some(password), headers: Params::new() }));
        return Ok(SipUri { secure, user, host, port, params: Params::new(), rare });
    }
    if !full {
        if !rest.is_empty() {
            return Err(ErrorKind::InvalidUri);
        }
        let rare = password.map(|password| Box::new(RareParts { password: Some(password), headers: Params::new() }));
        return Ok(SipUri { secure, user, host, port, params: Params::new(), rare });
    }
    let qmark = find_byte(rest, b'?').unwrap_or(rest.len());
    let params = uri_params(src, &rest[..qmark])?;
    let mut headers = Vec::new();
    if qmark < rest.len() {
        for item in rest[qmark + 1..].split('&') {
            let eq = find_byte(item, b'=').ok_or(ErrorKind::InvalidUri)?;
            let (n, v) = (&item[..eq], &item[eq + 1..]);
            if n.is_empty() || !all_in(n, HNV) || !all_in(v, HNV) || !valid_escapes(item) {
                return Err(ErrorKind::InvalidUri);
            }
            headers.push(Param { name: sub(src, n), value: Some(sub(src, v)) });
        }
    }
    let rare =
        (password.is_some() || !headers.is_empty()).then(|| Box::new(RareParts { password, headers: Params(headers) }));
    Ok(SipUri { secure, user, host, port, params, rare })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_quads_print_like_the_standard_library() {
        // Every octet value in every position, next to short and long ones.
        for v in 0..=255u8 {
            for a in [[v, 0, 0, 0], [1, v, 22, 255], [255, 255, v, 9], [10, 100, 0, v], [v, v, v, v]] {
                let ip = std::net::Ipv4Addr::from(a);
                let mut out = b"x".to_vec();
                Host::Ipv4(ip).write(&mut out);
                assert_eq!(out, format!("x{ip}").as_bytes());
                let mut buf = [0u8; 15];
                let n = ipv4_digits(&ip, &mut buf);
                assert_eq!(&buf[..n], ip.to_string().as_bytes());
            }
        }
    }

    #[test]
    fn empty_labels_are_found_at_every_position() {
        // Every place a ".." can sit relative to the eight-byte windows.
        for len in 2..40 {
            for at in 0..len - 1 {
                let mut h = vec![b'a'; len];
                h[at] = b'.';
                h[at + 1] = b'.';
                assert!(has_empty_label(&h), "{}", String::from_utf8_lossy(&h));
                if at > 0 && at + 2 < len {
                    let host = String::from_utf8(h.clone()).unwrap();
                    assert!(Uri::parse(&format!("sip:{host}")).is_err(), "{host}");
                }
                h[at + 1] = b'a';
                assert!(!has_empty_label(&h), "{}", String::from_utf8_lossy(&h));
            }
        }
        assert!(Uri::parse("sip:a.b.c.d.e.f.g.h.example.com").is_ok());
        assert!(Uri::parse("sip:.example.com").is_err());
    }

    #[test]
    fn ipv4_hosts_print_as_dotted_quads() {
        for a in ["0.0.0.0", "255.255.255.255", "10.0.100.9", "192.0.2.10", "1.20.199.250"] {
            let mut out = Vec::new();
            Host::Ipv4(a.parse().unwrap()).write(&mut out);
            assert_eq!(out, a.as_bytes());
        }
        // Every octet value in every position prints as the standard
        // library prints it (widths 1 to 3 next to each other).
        for x in 0..=255u8 {
            for a in [[x, 0, 9, 255], [7, x, 100, 10], [99, 200, x, 1], [1, 10, 100, x]] {
                let a = Ipv4Addr::from(a);
                let mut out = Vec::new();
                Host::Ipv4(a).write(&mut out);
                assert_eq!(out, a.to_string().as_bytes());
                assert_eq!(ByteString::from_ip(a.into()), a.to_string());
                assert_eq!(
                    ByteString::from_ip(a.into()).short_words(),
                    ByteString::from(a.to_string().as_str()).short_words()
                );
            }
        }
    }

    #[test]
    fn dotted_quads() {
        assert_eq!(dotted_quad(b"192.0.2.10"), Some(Ipv4Addr::new(192, 0, 2, 10)));
        assert_eq!(dotted_quad(b"0.0.0.0"), Some(Ipv4Addr::UNSPECIFIED));
        assert_eq!(dotted_quad(b"255.255.255.255"), Some(Ipv4Addr::BROADCAST));
        for bad in [
            "256.0.0.1",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "1.2.3.",
            ".1.2.3",
            "1.2.3.4.",
            "0001.2.3.4",
            "1.2.3.1000",
            "",
        ] {
            assert_eq!(dotted_quad(bad.as_bytes()), None, "{bad}");
        }
    }

    fn sip(s: &str) -> SipUri {
        match Uri::parse(s).unwrap() {
            Uri::Sip(u) => u,
            other => panic!("not sip: {other:?}"),
        }
    }

    #[test]
    fn parts() {
        let u = sip("sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=hi&priority=urgent");
        assert!(u.secure);
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.password(), Some("secret"));
        assert_eq!(u.host, Host::Ipv6("2001:db8::1".parse().unwrap()));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.transport(), Some("tcp"));
        assert!(u.lr());
        assert_eq!(u.headers().value("priority"), Some("urgent"));
        let t = Uri::parse("tel:+1-201-555-0123;ext=12").unwrap();
        assert!(matches!(&t, Uri::Tel(t) if t.is_global() && t.params.value("ext") == Some("12")));
    }

    // RFC 3261 §19.1.4 examples.
    #[test]
    fn rfc3261_equal() {
        let pairs = [
            ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
            ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
            ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
            ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
            (
                "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
                "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
            ),
            (
                "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
                "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
            ),
        ];
        for (a, b) in pairs {
            assert_eq!(Uri::parse(a).unwrap(), Uri::parse(b).unwrap(), "{a} == {b}");
        }
    }

    #[test]
    fn rfc3261_not_equal() {
        let pairs = [
            ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
            ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
            ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
        ];
        for (a, b) in pairs {
            assert_ne!(Uri::parse(a).unwrap(), Uri::parse(b).unwrap(), "{a} != {b}");
        }
    }

    #[test]
    fn rejects() {
        for bad in ["sip:", "sip:@host", "sip:user@", "sip:host:99999", "sip:a@b c", "sip:user@host;=x", "sip:u%zz@h"] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn print_round_trip() {
        for s in [
            "sip:alice@atlanta.com:5060;transport=udp?x=y&z=w",
            "sips:[::1]",
            "tel:+15555;phone-context=x",
            "urn:service:sos",
        ] {
            assert_eq!(Uri::parse(s).unwrap().to_string(), s);
        }
    }
}
