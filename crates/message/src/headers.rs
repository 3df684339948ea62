//! Typed headers, the header collection, and per-header value grammar.

use std::fmt;
use std::sync::Arc;

use crate::ByteString;
use crate::out::{emplace, put};

use crate::method::Method;
use crate::param::{Params, header_params};
use crate::text::{
    delta_seconds, eq_ic, find_u8, is_token_char, is_ws, number_u32, quoted_raw, quoted_value, sub, token,
    write_quoted, write_u32,
};
use crate::uri::{Host, Uri, parse_hostport, parse_uri};

macro_rules! header_names {
    ($( $var:ident => $canon:literal $(, $compact:literal)? ;)*) => {
        /// Names of the headers sipact knows by type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize))]
        #[non_exhaustive]
        pub enum HeaderName {
            $(
                #[doc = $canon]
                $var,
            )*
        }

        impl HeaderName {
            /// The canonical spelling (`Call-ID`, `CSeq`, `WWW-Authenticate`).
            pub const fn as_str(self) -> &'static str {
                match self { $( HeaderName::$var => $canon, )* }
            }

            /// The canonical spelling followed by `": "`, as printed before
            /// a value (one copy instead of two).
            pub(crate) const fn prefix(self) -> &'static str {
                match self { $( HeaderName::$var => concat!($canon, ": "), )* }
            }

            /// The compact form (RFC 3261 §7.3.3 and later RFCs), if any.
            pub const fn compact(self) -> Option<char> {
                match self {
                    $( HeaderName::$var => header_names!(@compact $($compact)?), )*
                }
            }

            /// Looks a name up, ignoring ASCII case; compact forms included.
            #[inline]
            pub fn lookup(name: &str) -> Option<HeaderName> {
                let b = name.as_bytes();
                let (Some(&first), Some(&last)) = (b.first(), b.last()) else { return None };
                if b.len() == 1 {
                    let c = first.to_ascii_lowercase();
                    $( $( if c == $compact.as_bytes()[0] { return Some(HeaderName::$var); } )? )*
                    return None;
                }
                // A perfect hash of the first and last letters and the
                // length picks the one candidate; one case-insensitive
                // comparison confirms it.
                let cand = NAME_TABLE[name_hash(first, last, b.len())];
                if cand == 0 {
                    return None;
                }
                let cand = ALL_NAMES[usize::from(cand) - 1];
                if same_name(b, cand.as_str().as_bytes()) { Some(cand) } else { None }
            }
        }

        /// Every typed name, in declaration order.
        const ALL_NAMES: &[HeaderName] = &[$( HeaderName::$var, )*];
    };
    (@compact $c:literal) => { Some(const_char($c)) };
    (@compact) => { None };
}

/// Case-insensitive comparison of a name with a canonical header name
/// (letters and `-`): where the canonical byte is a letter (bit 0x40 set)
/// the two bytes may differ in the case bit 0x20 only; where it is `-` they
/// must be equal. No other byte passes for a letter or `-`.
#[inline]
fn same_name(a: &[u8], canon: &[u8]) -> bool {
    if a.len() != canon.len() {
        return false;
    }
    // The same rule on eight bytes at once where the name is that long:
    // the first and the last eight (overlapping for up to sixteen), then
    // any middle words.
    let word = |b: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let differs = |at: usize| {
        let (x, c) = (word(a, at), word(canon, at));
        (x ^ c) & !((c & 0x4040_4040_4040_4040) >> 1) != 0
    };
    let n = a.len();
    if n >= 8 {
        let mut at = 0;
        while at + 8 < n {
            if differs(at) {
                return false;
            }
            at += 8;
        }
        return !differs(n - 8);
    }
    let mut diff = 0u8;
    for i in 0..n {
        let case_bit = (canon[i] & 0x40) >> 1;
        diff |= (a[i] ^ canon[i]) & !case_bit;
    }
    diff == 0
}

/// The slot of a name of `len` bytes starting with `first` and ending with
/// `last` in [`NAME_TABLE`]: collision-free over the canonical names (checked
/// when the table is built, at compile time).
#[inline]
const fn name_hash(first: u8, last: u8, len: usize) -> usize {
    ((first | 0x20) as usize + (last | 0x20) as usize * 14 + len * 16) & 127
}

/// Index + 1 in [`ALL_NAMES`] of the name hashed to each slot, 0 for none.
static NAME_TABLE: [u8; 128] = build_name_table();

const fn build_name_table() -> [u8; 128] {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < ALL_NAMES.len() {
        let b = ALL_NAMES[i].as_str().as_bytes();
        let h = name_hash(b[0], b[b.len() - 1], b.len());
        assert!(t[h] == 0, "header name hash collision");
        t[h] = (i + 1) as u8;
        i += 1;
    }
    t
}

const fn const_char(s: &str) -> char {
    s.as_bytes()[0] as char
}

header_names! {
    Via => "Via", "v";
    From => "From", "f";
    To => "To", "t";
    CallId => "Call-ID", "i";
    CSeq => "CSeq";
    Contact => "Contact", "m";
    MaxForwards => "Max-Forwards";
    ContentLength => "Content-Length", "l";
    ContentType => "Content-Type", "c";
    ContentDisposition => "Content-Disposition";
    ContentEncoding => "Content-Encoding", "e";
    Route => "Route";
    RecordRoute => "Record-Route";
    Require => "Require";
    ProxyRequire => "Proxy-Require";
    Supported => "Supported", "k";
    Unsupported => "Unsupported";
    Allow => "Allow";
    AllowEvents => "Allow-Events", "u";
    Expires => "Expires";
    MinExpires => "Min-Expires";
    WwwAuthenticate => "WWW-Authenticate";
    ProxyAuthenticate => "Proxy-Authenticate";
    Authorization => "Authorization";
    ProxyAuthorization => "Proxy-Authorization";
    RSeq => "RSeq";
    RAck => "RAck";
    ReferTo => "Refer-To", "r";
    ReferredBy => "Referred-By", "b";
    Replaces => "Replaces";
    Event => "Event", "o";
    SubscriptionState => "Subscription-State";
    SessionExpires => "Session-Expires", "x";
    MinSe => "Min-SE";
    Reason => "Reason";
    Privacy => "Privacy";
    PAssertedIdentity => "P-Asserted-Identity";
    UserAgent => "User-Agent";
    Server => "Server";
    Subject => "Subject", "s";
    Warning => "Warning";
    RetryAfter => "Retry-After";
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Via header value (RFC 3261 §20.42).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Via {
    /// Protocol name, normally `SIP`.
    pub protocol: ByteString,
    /// Protocol version, normally `2.0`.
    pub version: ByteString,
    /// Transport (`UDP`, `TCP`, `TLS`, `WS`, `WSS`, `SCTP`...), as written.
    pub transport: ByteString,
    /// sent-by host.
    pub host: Host,
    /// sent-by port.
    pub port: Option<u16>,
    /// Parameters (`branch`, `received`, `rport`, `maddr`, `ttl`...).
    pub params: Params,
}

impl Via {
    /// The sent-by as text: host, and `:port` when there is one (the
    /// server transaction key of RFC 3261 §17.2.3).
    pub fn sent_by(&self) -> ByteString {
        if let Host::Ipv4(a) = &self.host {
            return ByteString::from_ipv4_port(a, self.port);
        }
        let mut v = Vec::with_capacity(48);
        write_hostport(&mut v, &self.host, self.port);
        ByteString::try_from(v).unwrap_or_default()
    }

    /// A `SIP/2.0/<transport>` Via with a branch.
    pub fn new(transport: &str, host: Host, port: Option<u16>, branch: &str) -> Self {
        let mut params = Params::new();
        params.set("branch", Some(branch));
        Via {
            protocol: ByteString::from_static("SIP"),
            version: ByteString::from_static("2.0"),
            transport: ByteString::from(transport),
            host,
            port,
            params,
        }
    }
    /// The `branch` parameter.
    #[inline]
    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }
    /// The `received` parameter.
    #[inline]
    pub fn received(&self) -> Option<&str> {
        self.params.value("received")
    }
    /// `None` without `rport`, `Some(None)` for a bare `rport`, `Some(Some(p))` when filled in.
    #[inline]
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params.get("rport").map(|v| v.and_then(|v| v.parse().ok()))
    }
    /// The `maddr` parameter.
    #[inline]
    pub fn maddr(&self) -> Option<&str> {
        self.params.value("maddr")
    }
    /// The `ttl` parameter.
    pub fn ttl(&self) -> Option<u8> {
        self.params.value("ttl").and_then(|v| v.parse().ok())
    }
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        put(out, self.protocol.as_bytes());
        out.push(b'/');
        put(out, self.version.as_bytes());
        out.push(b'/');
        put(out, self.transport.as_bytes());
        out.push(b' ');
        write_hostport(out, &self.host, self.port);
        self.params.write(out, b';');
    }
}

fn write_hostport(out: &mut Vec<u8>, host: &Host, port: Option<u16>) {
    host.write(out);
    if let Some(p) = port {
        out.push(b':');
        write_u32(out, p.into());
    }
}

/// A name-addr or addr-spec with header parameters: From, To, Route,
/// Record-Route, Refer-To, Referred-By, P-Asserted-Identity, Contact.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct NameAddr {
    /// Display name, unquoted and unescaped.
    pub display: Option<ByteString>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters (`tag`, `expires`, `q`...).
    pub params: Params,
}

impl NameAddr {
    /// [`NameAddr::detached`] in place: only strings that share a received
    /// buffer are copied, nothing is rebuilt.
    pub fn detach(&mut self) {
        if let Some(d) = &mut self.display {
            d.detach();
        }
        self.uri.detach();
        self.params.detach();
    }

    /// A copy whose strings keep no received buffer alive (see
    /// [`ByteString::detached`]): for an address kept long after its message.
    pub fn detached(&self) -> NameAddr {
        NameAddr {
            display: self.display.as_ref().map(ByteString::detached),
            uri: self.uri.detached(),
            params: self.params.detached(),
        }
    }

    /// A name-addr with no display name and no parameters.
    pub fn new(uri: Uri) -> Self {
        NameAddr { display: None, uri, params: Params::new() }
    }
    /// The `tag` parameter.
    #[inline]
    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }
    /// The `expires` parameter (Contact).
    #[inline]
    pub fn expires(&self) -> Option<u32> {
        self.params.value("expires").map(|v| v.parse().unwrap_or(u32::MAX))
    }
    /// The `q` parameter (Contact).
    pub fn q(&self) -> Option<f32> {
        self.params.value("q").and_then(|v| v.parse().ok())
    }
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        self.write_bracketed(out);
        self.params.write(out, b';');
    }

    /// The display name and the bracketed URI, without the parameters.
    pub(crate) fn write_bracketed(&self, out: &mut Vec<u8>) {
        if let Some(d) = &self.display {
            write_quoted(out, d);
            out.push(b' ');
        }
        out.push(b'<');
        self.uri.write(out);
        out.push(b'>');
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = Vec::new();
        self.write(&mut v);
        f.write_str(&String::from_utf8_lossy(&v))
    }
}

/// A Contact value: `*` or an address.
// `Any` is rare and `Addr` the normal case: boxing would cost an allocation
// per Contact for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Contact {
    /// `Contact: *` (REGISTER removing all bindings).
    Any,
    /// An address with its parameters.
    Addr(NameAddr),
}

impl Contact {
    /// The address, unless this is `*`.
    #[inline]
    pub fn addr(&self) -> Option<&NameAddr> {
        match self {
            Contact::Any => None,
            Contact::Addr(a) => Some(a),
        }
    }
}

/// CSeq (RFC 3261 §20.16).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CSeq {
    /// Sequence number (below 2^31 per RFC 3261 §8.1.1.5).
    pub seq: u32,
    /// Method.
    pub method: Method,
}

/// A media type with parameters (Content-Type).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MediaType {
    /// Top-level type (`application`).
    pub mtype: ByteString,
    /// Subtype (`sdp`).
    pub subtype: ByteString,
    /// Parameters (`charset`, `boundary`...).
    pub params: Params,
}

impl MediaType {
    /// `type/subtype` without parameters.
    pub fn new(mtype: &str, subtype: &str) -> Self {
        MediaType { mtype: ByteString::from(mtype), subtype: ByteString::from(subtype), params: Params::new() }
    }
    /// Whether this is `mtype/subtype`, ignoring case.
    #[inline]
    pub fn is(&self, mtype: &str, subtype: &str) -> bool {
        eq_ic(&self.mtype, mtype) && eq_ic(&self.subtype, subtype)
    }
}

/// A token with parameters: Content-Disposition, Event, Subscription-State,
/// Reason (protocol), Replaces (call-id).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TokenParams {
    /// The leading value (`session`, `refer`, `active`, `SIP`, a Call-ID).
    pub value: ByteString,
    /// Parameters.
    pub params: Params,
}

impl TokenParams {
    /// A value without parameters.
    pub fn new(value: &str) -> Self {
        TokenParams { value: ByteString::from(value), params: Params::new() }
    }
}

/// A delta-seconds value with parameters: Session-Expires, Min-SE, Retry-After.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DeltaParams {
    /// Seconds.
    pub delta: u32,
    /// A comment (Retry-After only), with its parentheses.
    pub comment: Option<ByteString>,
    /// Parameters (`refresher`, `duration`...).
    pub params: Params,
}

impl DeltaParams {
    /// Seconds, no parameters.
    pub fn new(delta: u32) -> Self {
        DeltaParams { delta, comment: None, params: Params::new() }
    }
    /// The `refresher` parameter of Session-Expires (`uac` or `uas`).
    #[inline]
    pub fn refresher(&self) -> Option<&str> {
        self.params.value("refresher")
    }
}

/// One auth-param of a challenge or credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AuthParam {
    /// Name (`realm`, `nonce`...).
    pub name: ByteString,
    /// Value, unquoted and unescaped.
    pub value: ByteString,
    /// Whether it was (and will be printed) quoted.
    pub quoted: bool,
}

/// A challenge (WWW-/Proxy-Authenticate) or credentials (Authorization,
/// Proxy-Authorization): a scheme and its parameters.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Auth {
    /// Scheme, normally `Digest`.
    pub scheme: ByteString,
    /// Parameters in order.
    pub params: Vec<AuthParam>,
}

impl fmt::Debug for Auth {
    /// Never prints `response` or other secrets' values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_map();
        l.entry(&"scheme", &self.scheme);
        for p in &self.params {
            if eq_ic(&p.name, "response") || eq_ic(&p.name, "cnonce") {
                l.entry(&p.name, &"<redacted>");
            } else {
                l.entry(&p.name, &p.value);
            }
        }
        l.finish()
    }
}

impl Auth {
    /// The value of `name` (case-insensitive).
    #[inline]
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|p| eq_ic(&p.name, name)).map(|p| &*p.value)
    }
    fn write(&self, out: &mut Vec<u8>) {
        put(out, self.scheme.as_bytes());
        for (i, p) in self.params.iter().enumerate() {
            put(out, if i == 0 { b" " } else { b", " });
            put(out, p.name.as_bytes());
            out.push(b'=');
            if p.quoted {
                write_quoted(out, &p.value);
            } else {
                put(out, p.value.as_bytes());
            }
        }
    }
}

/// RAck (RFC 3262 §7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RAck {
    /// RSeq of the provisional response acknowledged.
    pub rseq: u32,
    /// CSeq number of the INVITE.
    pub cseq: u32,
    /// CSeq method of the INVITE.
    pub method: Method,
}

/// Warning (RFC 3261 §20.43).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Warning {
    /// Three-digit warn-code.
    pub code: u16,
    /// warn-agent (`host[:port]` or pseudonym).
    pub agent: ByteString,
    /// warn-text, unquoted.
    pub text: ByteString,
}

/// A comma-separated list of tokens (Supported, Require, Proxy-Require,
/// Unsupported, Content-Encoding, Allow-Events), kept as its text with the
/// tokens joined by `", "`.
///
/// Most lists are only printed or asked whether they name a tag, so they
/// are not split into strings: a parsed list that is already written that
/// way is a slice of the message (no copy), and a list built from a
/// `'static` text costs nothing. Compares equal when the tokens are the
/// same, in the same order.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct TokenList(ByteString);

impl TokenList {
    /// The empty list.
    pub const fn new() -> Self {
        TokenList(ByteString::new())
    }

    /// A list from its text, which must be tokens joined by `", "`
    /// (`"100rel, timer"`); nothing is copied or checked.
    #[inline]
    pub const fn from_static(list: &'static str) -> Self {
        TokenList(ByteString::from_static(list))
    }

    /// The list as printed: the tokens joined by `", "`.
    #[inline]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tokens, in order.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.split(", ").filter(|t| !t.is_empty())
    }

    /// Whether a token equals `tag`, ignoring ASCII case (option tags and
    /// content codings are case-insensitive).
    #[inline]
    pub fn contains(&self, tag: &str) -> bool {
        self.iter().any(|t| eq_ic(t, tag))
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there is none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<S: AsRef<str>> FromIterator<S> for TokenList {
    /// Joins the items with `", "`; each must be a token.
    fn from_iter<I: IntoIterator<Item = S>>(items: I) -> Self {
        TokenList(joined(items.into_iter().map(|t| ByteString::from(t.as_ref()))))
    }
}

impl fmt::Debug for TokenList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for TokenList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// The methods of an Allow header, kept as text like a [`TokenList`]: the
/// method names joined by `", "`.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct MethodList(TokenList);

impl MethodList {
    /// The empty list.
    pub const fn new() -> Self {
        MethodList(TokenList::new())
    }

    /// A list from its text, which must be method names joined by `", "`
    /// (`"INVITE, ACK, BYE"`); nothing is copied or checked.
    #[inline]
    pub const fn from_static(list: &'static str) -> Self {
        MethodList(TokenList::from_static(list))
    }

    /// The list as printed: the method names joined by `", "`.
    #[inline]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The methods, in order.
    pub fn iter(&self) -> impl Iterator<Item = Method> + '_ {
        self.0.iter().map(|t| Method::from_src(&self.0.0, t))
    }

    /// Whether `method` is in the list (method names are case-sensitive).
    pub fn contains(&self, method: &Method) -> bool {
        let name = method.as_str();
        self.0.iter().any(|t| t == name)
    }

    /// How many methods there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'m> FromIterator<&'m Method> for MethodList {
    fn from_iter<I: IntoIterator<Item = &'m Method>>(items: I) -> Self {
        MethodList(items.into_iter().map(Method::as_str).collect())
    }
}

impl FromIterator<Method> for MethodList {
    fn from_iter<I: IntoIterator<Item = Method>>(items: I) -> Self {
        items.into_iter().collect::<Vec<_>>().iter().collect()
    }
}

impl fmt::Debug for MethodList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for MethodList {
    /// As a sequence of [`Method`]s, the form the `Vec<Method>` it replaced had.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// The items joined by `", "`.
fn joined(items: impl Iterator<Item = ByteString>) -> ByteString {
    let mut out = String::new();
    for t in items {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(&t);
    }
    ByteString::from(out)
}

/// An unparsed header, kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RawHeader {
    /// Name as written.
    pub name: ByteString,
    /// Value as written (folding replaced by a single space, ends trimmed).
    pub value: ByteString,
}

/// One header value. Headers whose grammar is a comma-separated list of
/// addresses (Via, Contact, Route, Record-Route, P-Asserted-Identity,
/// Reason, Warning) give one `Header` per element; token lists (Require,
/// Supported, Allow...) give one `Header` per line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum Header {
    /// Via
    Via(Via),
    /// From
    From(NameAddr),
    /// To
    To(NameAddr),
    /// Call-ID
    CallId(ByteString),
    /// CSeq
    CSeq(CSeq),
    /// Contact
    Contact(Contact),
    /// Max-Forwards
    MaxForwards(u32),
    /// Content-Length
    ContentLength(u32),
    /// Content-Type
    ContentType(MediaType),
    /// Content-Disposition
    ContentDisposition(TokenParams),
    /// Content-Encoding
    ContentEncoding(TokenList),
    /// Route
    Route(NameAddr),
    /// Record-Route
    RecordRoute(NameAddr),
    /// Require
    Require(TokenList),
    /// Proxy-Require
    ProxyRequire(TokenList),
    /// Supported
    Supported(TokenList),
    /// Unsupported
    Unsupported(TokenList),
    /// Allow
    Allow(MethodList),
    /// Allow-Events
    AllowEvents(TokenList),
    /// Expires
    Expires(u32),
    /// Min-Expires
    MinExpires(u32),
    /// WWW-Authenticate
    WwwAuthenticate(Auth),
    /// Proxy-Authenticate
    ProxyAuthenticate(Auth),
    /// Authorization
    Authorization(Auth),
    /// Proxy-Authorization
    ProxyAuthorization(Auth),
    /// RSeq
    RSeq(u32),
    /// RAck
    RAck(RAck),
    /// Refer-To
    ReferTo(NameAddr),
    /// Referred-By
    ReferredBy(NameAddr),
    /// Replaces: `value` is the Call-ID; `to-tag`, `from-tag`, `early-only` in params.
    Replaces(TokenParams),
    /// Event
    Event(TokenParams),
    /// Subscription-State
    SubscriptionState(TokenParams),
    /// Session-Expires
    SessionExpires(DeltaParams),
    /// Min-SE
    MinSe(DeltaParams),
    /// Reason
    Reason(TokenParams),
    /// Privacy (values separated by `;`)
    Privacy(Vec<ByteString>),
    /// P-Asserted-Identity
    PAssertedIdentity(NameAddr),
    /// User-Agent
    UserAgent(ByteString),
    /// Server
    Server(ByteString),
    /// Subject
    Subject(ByteString),
    /// Warning
    Warning(Warning),
    /// Retry-After
    RetryAfter(DeltaParams),
    /// Any other header, verbatim.
    Other(RawHeader),
}

impl Header {
    /// The typed name, `None` for [`Header::Other`].
    pub fn name(&self) -> Option<HeaderName> {
        use HeaderName as N;
        Some(match self {
            Header::Via(_) => N::Via,
            Header::From(_) => N::From,
            Header::To(_) => N::To,
            Header::CallId(_) => N::CallId,
            Header::CSeq(_) => N::CSeq,
            Header::Contact(_) => N::Contact,
            Header::MaxForwards(_) => N::MaxForwards,
            Header::ContentLength(_) => N::ContentLength,
            Header::ContentType(_) => N::ContentType,
            Header::ContentDisposition(_) => N::ContentDisposition,
            Header::ContentEncoding(_) => N::ContentEncoding,
            Header::Route(_) => N::Route,
            Header::RecordRoute(_) => N::RecordRoute,
            Header::Require(_) => N::Require,
            Header::ProxyRequire(_) => N::ProxyRequire,
            Header::Supported(_) => N::Supported,
            Header::Unsupported(_) => N::Unsupported,
            Header::Allow(_) => N::Allow,
            Header::AllowEvents(_) => N::AllowEvents,
            Header::Expires(_) => N::Expires,
            Header::MinExpires(_) => N::MinExpires,
            Header::WwwAuthenticate(_) => N::WwwAuthenticate,
            Header::ProxyAuthenticate(_) => N::ProxyAuthenticate,
            Header::Authorization(_) => N::Authorization,
            Header::ProxyAuthorization(_) => N::ProxyAuthorization,
            Header::RSeq(_) => N::RSeq,
            Header::RAck(_) => N::RAck,
            Header::ReferTo(_) => N::ReferTo,
            Header::ReferredBy(_) => N::ReferredBy,
            Header::Replaces(_) => N::Replaces,
            Header::Event(_) => N::Event,
            Header::SubscriptionState(_) => N::SubscriptionState,
            Header::SessionExpires(_) => N::SessionExpires,
            Header::MinSe(_) => N::MinSe,
            Header::Reason(_) => N::Reason,
            Header::Privacy(_) => N::Privacy,
            Header::PAssertedIdentity(_) => N::PAssertedIdentity,
            Header::UserAgent(_) => N::UserAgent,
            Header::Server(_) => N::Server,
            Header::Subject(_) => N::Subject,
            Header::Warning(_) => N::Warning,
            Header::RetryAfter(_) => N::RetryAfter,
            Header::Other(_) => return None,
        })
    }

    /// The name as it will be printed.
    pub fn name_str(&self) -> &str {
        match self {
            Header::Other(r) => &r.name,
            h => h.name().map(HeaderName::as_str).unwrap_or(""),
        }
    }

    /// Prints `Name: value\r\n`.
    pub fn write(&self, out: &mut Vec<u8>) {
        match (self, self.name()) {
            (_, Some(n)) => put(out, n.prefix().as_bytes()),
            (h, None) => {
                put(out, h.name_str().as_bytes());
                put(out, b": ");
            }
        }
        self.write_value(out);
        put(out, b"\r\n");
    }

    /// Prints the value only.
    pub fn write_value(&self, out: &mut Vec<u8>) {
        fn list(out: &mut Vec<u8>, items: &[ByteString], sep: &[u8]) {
            for (i, t) in items.iter().enumerate() {
                if i > 0 {
                    put(out, sep);
                }
                put(out, t.as_bytes());
            }
        }
        fn tp(out: &mut Vec<u8>, t: &TokenParams) {
            put(out, t.value.as_bytes());
            t.params.write(out, b';');
        }
        fn dp(out: &mut Vec<u8>, d: &DeltaParams) {
            write_u32(out, d.delta);
            if let Some(c) = &d.comment {
                out.push(b' ');
                put(out, c.as_bytes());
            }
            d.params.write(out, b';');
        }
        match self {
            Header::Via(v) => v.write(out),
            Header::From(a)
            | Header::To(a)
            | Header::Route(a)
            | Header::RecordRoute(a)
            | Header::ReferTo(a)
            | Header::ReferredBy(a)
            | Header::PAssertedIdentity(a) => a.write(out),
            Header::Contact(Contact::Any) => out.push(b'*'),
            Header::Contact(Contact::Addr(a)) => a.write(out),
            Header::CallId(s) | Header::UserAgent(s) | Header::Server(s) | Header::Subject(s) => put(out, s.as_bytes()),
            Header::CSeq(c) => {
                write_u32(out, c.seq);
                out.push(b' ');
                put(out, c.method.as_str().as_bytes());
            }
            Header::MaxForwards(n)
            | Header::ContentLength(n)
            | Header::Expires(n)
            | Header::MinExpires(n)
            | Header::RSeq(n) => write_u32(out, *n),
            Header::ContentType(m) => {
                put(out, m.mtype.as_bytes());
                out.push(b'/');
                put(out, m.subtype.as_bytes());
                m.params.write(out, b';');
            }
            Header::ContentDisposition(t)
            | Header::Replaces(t)
            | Header::Event(t)
            | Header::SubscriptionState(t)
            | Header::Reason(t) => tp(out, t),
            Header::ContentEncoding(l)
            | Header::Require(l)
            | Header::ProxyRequire(l)
            | Header::Supported(l)
            | Header::Unsupported(l)
            | Header::AllowEvents(l) => put(out, l.as_str().as_bytes()),
            Header::Privacy(l) => list(out, l, b";"),
            Header::Allow(m) => put(out, m.as_str().as_bytes()),
            Header::WwwAuthenticate(a)
            | Header::ProxyAuthenticate(a)
            | Header::Authorization(a)
            | Header::ProxyAuthorization(a) => a.write(out),
            Header::RAck(r) => {
                write_u32(out, r.rseq);
                out.push(b' ');
                write_u32(out, r.cseq);
                out.push(b' ');
                put(out, r.method.as_str().as_bytes());
            }
            Header::SessionExpires(d) | Header::MinSe(d) | Header::RetryAfter(d) => dp(out, d),
            Header::Warning(w) => {
                write_u32(out, w.code.into());
                out.push(b' ');
                put(out, w.agent.as_bytes());
                out.push(b' ');
                write_quoted(out, &w.text);
            }
            Header::Other(r) => put(out, r.value.as_bytes()),
        }
    }
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = Vec::new();
        self.write(&mut v);
        f.write_str(String::from_utf8_lossy(&v).trim_end())
    }
}

/// The headers of a message, in order.
///
/// The vector is shared between clones and copied on the first change
/// (`Arc::make_mut`): a session keeps the INVITE it sent, a transaction the
/// response it answered with, and an event hands the same message to the
/// application, all without copying a header. A message with no headers
/// holds no vector at all.
#[derive(Clone, Default)]
pub struct Headers(Option<Arc<Vec<Header>>>);

/// Header vectors kept for reuse on this thread: a parsed message's vector
/// (16 slots at first, about 4 KB) is larger than what the system allocator
/// caches per thread, so allocating and freeing one per message costs more
/// than the parse of several headers. A dropped message's vector (emptied,
/// still inside its `Arc`) goes back here when no clone shares it, at most
/// [`POOL_MAX`] of them, and the next parse takes it.
mod pool {
    use std::sync::Arc;

    use super::Header;
    use crate::pool::{FreeList, keep, take as spare};

    /// Vectors kept per thread (at most about 8 x 64 x 248 bytes).
    pub(super) const POOL_MAX: usize = 8;
    /// Capacity a parse starts with.
    pub(super) const START: usize = 16;
    /// Vectors that grew past this are not kept.
    const KEEP_MAX: usize = 64;

    thread_local! {
        static POOL: FreeList<Arc<Vec<Header>>> = const { FreeList::new(Vec::new()) };
    }

    /// An unshared, empty vector with room for at least [`START`] headers.
    pub(super) fn take() -> Arc<Vec<Header>> {
        spare(&POOL).unwrap_or_else(|| Arc::new(Vec::with_capacity(START)))
    }

    /// Empties `a` and keeps it when no clone shares it and the pool has
    /// room; otherwise only drops this reference.
    pub(super) fn give(mut a: Arc<Vec<Header>>) {
        let Some(v) = crate::unique::unique_mut(&mut a) else { return };
        if !(START..=KEEP_MAX).contains(&v.capacity()) {
            return;
        }
        // Dropped before the pool is borrowed: a header's drop never reaches
        // the pool, but this keeps the borrow short anyway.
        v.clear();
        keep(&POOL, a, POOL_MAX);
    }
}

impl Drop for Headers {
    fn drop(&mut self) {
        if let Some(a) = self.0.take() {
            pool::give(a);
        }
    }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Headers {}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Headers {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(s)
    }
}

impl From<Vec<Header>> for Headers {
    fn from(v: Vec<Header>) -> Self {
        Headers::from_vec(v)
    }
}

macro_rules! first {
    ($self:ident, $pat:ident) => {
        $self.as_slice().iter().find_map(|h| match h {
            Header::$pat(v) => Some(v),
            _ => None,
        })
    };
}

impl Headers {
    /// No headers.
    pub const fn new() -> Self {
        Headers(None)
    }
    /// No headers, with room for the headers of a typical message (a vector
    /// reused from a dropped message when there is one).
    pub fn with_room() -> Self {
        Headers(Some(pool::take()))
    }
    /// These headers, in order (unshared until cloned).
    pub fn from_vec(v: Vec<Header>) -> Self {
        Headers(Some(Arc::new(v)))
    }
    /// The headers, in order.
    #[inline]
    pub fn as_slice(&self) -> &[Header] {
        match &self.0 {
            Some(a) => a,
            None => &[],
        }
    }
    /// The vector itself, to change in place; copied first when a clone
    /// of this message still shares it.
    #[inline]
    pub fn as_mut_vec(&mut self) -> &mut Vec<Header> {
        crate::unique::make_mut(self.0.get_or_insert_with(pool::take))
    }
    /// Whether `other` shares this vector (a clone not changed since).
    pub fn shares(&self, other: &Headers) -> bool {
        matches!((&self.0, &other.0), (Some(a), Some(b)) if Arc::ptr_eq(a, b))
    }
    /// Appends a header.
    #[inline]
    pub fn push(&mut self, h: Header) {
        self.as_mut_vec().push(h);
    }
    /// Inserts a header at the front (a new top Via, for instance).
    pub fn push_front(&mut self, h: Header) {
        self.as_mut_vec().insert(0, h);
    }
    /// Iterates in order.
    #[inline]
    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.as_slice().iter()
    }
    /// Number of header values.
    #[inline]
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }
    /// Whether there are none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }
    /// Removes every header named `name`.
    pub fn remove(&mut self, name: HeaderName) {
        if self.iter().any(|h| h.name() == Some(name)) {
            self.as_mut_vec().retain(|h| h.name() != Some(name));
        }
    }
    /// All Via values, top first.
    pub fn vias(&self) -> impl Iterator<Item = &Via> {
        self.iter().filter_map(|h| match h {
            Header::Via(v) => Some(v),
            _ => None,
        })
    }
    /// The top Via.
    #[inline]
    pub fn via(&self) -> Option<&Via> {
        first!(self, Via)
    }
    /// From.
    #[inline]
    pub fn from(&self) -> Option<&NameAddr> {
        first!(self, From)
    }
    /// To.
    #[inline]
    pub fn to(&self) -> Option<&NameAddr> {
        first!(self, To)
    }
    /// Call-ID.
    #[inline]
    pub fn call_id(&self) -> Option<&str> {
        first!(self, CallId).map(|s| &**s)
    }
    /// CSeq.
    #[inline]
    pub fn cseq(&self) -> Option<&CSeq> {
        first!(self, CSeq)
    }
    /// Max-Forwards.
    #[inline]
    pub fn max_forwards(&self) -> Option<u32> {
        first!(self, MaxForwards).copied()
    }
    /// Content-Length.
    #[inline]
    pub fn content_length(&self) -> Option<u32> {
        first!(self, ContentLength).copied()
    }
    /// Content-Type.
    #[inline]
    pub fn content_type(&self) -> Option<&MediaType> {
        first!(self, ContentType)
    }
    /// Expires.
    #[inline]
    pub fn expires(&self) -> Option<u32> {
        first!(self, Expires).copied()
    }
    /// RSeq.
    #[inline]
    pub fn rseq(&self) -> Option<u32> {
        first!(self, RSeq).copied()
    }
    /// RAck.
    #[inline]
    pub fn rack(&self) -> Option<&RAck> {
        first!(self, RAck)
    }
    /// Session-Expires.
    #[inline]
    pub fn session_expires(&self) -> Option<&DeltaParams> {
        first!(self, SessionExpires)
    }
    /// All Contact values.
    pub fn contacts(&self) -> impl Iterator<Item = &Contact> {
        self.iter().filter_map(|h| match h {
            Header::Contact(v) => Some(v),
            _ => None,
        })
    }
    /// The first Contact address.
    #[inline]
    pub fn contact(&self) -> Option<&NameAddr> {
        self.contacts().find_map(Contact::addr)
    }
    /// Route values in order.
    pub fn routes(&self) -> impl Iterator<Item = &NameAddr> {
        self.iter().filter_map(|h| match h {
            Header::Route(v) => Some(v),
            _ => None,
        })
    }
    /// Record-Route values in order.
    pub fn record_routes(&self) -> impl Iterator<Item = &NameAddr> {
        self.iter().filter_map(|h| match h {
            Header::RecordRoute(v) => Some(v),
            _ => None,
        })
    }
    /// Whether an option tag appears in any Require header.
    #[inline]
    pub fn requires(&self, tag: &str) -> bool {
        self.iter().any(|h| matches!(h, Header::Require(l) if l.contains(tag)))
    }
    /// Whether an option tag appears in any Supported header.
    #[inline]
    pub fn supports(&self, tag: &str) -> bool {
        self.iter().any(|h| matches!(h, Header::Supported(l) if l.contains(tag)))
    }
    /// Unknown headers named `name` (ASCII case-insensitive).
    pub fn other(&self, name: &str) -> impl Iterator<Item = &str> {
        self.iter().filter_map(move |h| match h {
            Header::Other(r) if eq_ic(&r.name, name) => Some(&*r.value),
            _ => None,
        })
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = &'a Header;
    type IntoIter = std::slice::Iter<'a, Header>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

// ---------------------------------------------------------------------------
// Value grammar. Each parser takes the value `v` (a slice of `src`) and pushes
// one or more headers; on error it returns the position where parsing failed.

type VRes<'a, T> = Result<(&'a str, T), &'a str>;

fn nom_pos<'a>(e: nom::Err<nom::error::Error<&'a str>>, fallback: &'a str) -> &'a str {
    match e {
        nom::Err::Error(e) | nom::Err::Failure(e) => e.input,
        nom::Err::Incomplete(_) => fallback,
    }
}

#[inline]
fn skip_ws(s: &str) -> &str {
    crate::text::trim_ws_start(s)
}

/// `s` without trailing spaces and tabs.
#[inline]
fn trim_ws_end(s: &str) -> &str {
    let b = s.as_bytes();
    let mut j = b.len();
    while j > 0 && (b[j - 1] == b' ' || b[j - 1] == b'\t') {
        j -= 1;
    }
    &s[..j]
}

fn expect_end(s: &str) -> Result<(), &str> {
    if skip_ws(s).is_empty() { Ok(()) } else { Err(s) }
}

/// After a list element: end, or a comma (then the next element).
fn list_next(s: &str) -> Result<Option<&str>, &str> {
    let t = skip_ws(s);
    if t.is_empty() {
        return Ok(None);
    }
    match t.strip_prefix(',') {
        Some(r) => Ok(Some(skip_ws(r))),
        None => Err(t),
    }
}

fn tok<'a>(s: &'a str) -> VRes<'a, &'a str> {
    token(s).map_err(|e| nom_pos(e, s))
}

fn u32_val<'a>(s: &'a str) -> VRes<'a, u32> {
    number_u32(s).map_err(|e| nom_pos(e, s))
}

fn delta<'a>(s: &'a str) -> VRes<'a, u32> {
    delta_seconds(s).map_err(|e| nom_pos(e, s))
}

fn sep_char(s: &str, c: char) -> Result<&str, &str> {
    let t = skip_ws(s);
    t.strip_prefix(c).map(skip_ws).ok_or(t)
}

fn params<'a>(src: &ByteString, s: &'a str) -> VRes<'a, Params> {
    header_params(src, s)
}

#[inline(always)]
fn via<'a>(src: &ByteString, s: &'a str) -> VRes<'a, Via> {
    let (s, protocol) = tok(s)?;
    let s = sep_char(s, '/')?;
    let (s, version) = tok(s)?;
    let s = sep_char(s, '/')?;
    let (s, transport) = tok(s)?;
    let t = skip_ws(s);
    if t.len() == s.len() {
        return Err(s);
    }
    let (host, port, rest) = parse_hostport(src, t, false).map_err(|_| t)?;
    let (rest, params) = params(src, rest)?;
    Ok((
        rest,
        Via {
            protocol: crate::text::sub(src, protocol),
            version: crate::text::sub(src, version),
            transport: crate::text::sub(src, transport),
            host,
            port,
            params,
        },
    ))
}

/// name-addr / addr-spec with header parameters. `addr_spec` allows the
/// bracket-less form.
/// The value is pushed to `out` wrapped by `wrap` (built in place rather than
/// returned, which saves moving it); returns the rest.
fn name_addr<'a>(
    src: &ByteString,
    s: &'a str,
    addr_spec: bool,
    out: &mut Vec<Header>,
    wrap: impl Fn(NameAddr) -> Header,
) -> Result<&'a str, &'a str> {
    let s = skip_ws(s);
    let (display, rest) = if s.starts_with('"') {
        let (rest, raw) = quoted_raw(s).map_err(|e| nom_pos(e, s))?;
        (Some(quoted_value(src, raw)), skip_ws(rest))
    } else if s.starts_with('<') {
        (None, s)
    } else {
        // Display name as tokens separated by LWS, or an addr-spec.
        let mut t = s;
        while let Ok((r, _)) = token(t) {
            t = skip_ws(r);
        }
        if t.starts_with('<') {
            let name = trim_ws_end(&s[..s.len() - t.len()]);
            (if name.is_empty() { None } else { Some(sub(src, name)) }, t)
        } else {
            if !addr_spec {
                return Err(s);
            }
            let end = s.bytes().position(|b| matches!(b, b';' | b',' | b' ' | b'\t')).unwrap_or(s.len());
            let uri = parse_uri(src, &s[..end], false).map_err(|_| s)?;
            let (rest, params) = params(src, &s[end..])?;
            put_addr(out, wrap, None, uri, params);
            return Ok(rest);
        }
    };
    let inner = rest.strip_prefix('<').ok_or(rest)?;
    let close = find_u8(inner.as_bytes(), b'>').ok_or(inner)?;
    let uri = parse_uri(src, &inner[..close], true).map_err(|_| inner)?;
    let (rest, params) = params(src, &inner[close + 1..])?;
    put_addr(out, wrap, display, uri, params);
    Ok(rest)
}

/// Pushes the header `wrap` makes of an address, assembled in its slot: a
/// placeholder (constants, stored in place) is pushed, then its fields are
/// set. Built whole and pushed, the 184-byte address was assembled on the
/// stack and copied into the slot with a `memcpy` call, 17 times per
/// whole call of the `call` bench.
#[inline(always)]
fn put_addr(
    out: &mut Vec<Header>,
    wrap: impl Fn(NameAddr) -> Header,
    display: Option<ByteString>,
    uri: Uri,
    params: Params,
) {
    emplace(out, || wrap(NameAddr { display: None, uri: Uri::Other(ByteString::new()), params: Params::new() }));
    let slot = match out.last_mut() {
        Some(
            Header::From(a)
            | Header::To(a)
            | Header::ReferTo(a)
            | Header::ReferredBy(a)
            | Header::Route(a)
            | Header::RecordRoute(a)
            | Header::PAssertedIdentity(a)
            | Header::Contact(Contact::Addr(a)),
        ) => a,
        // `wrap` makes one of the address headers above.
        _ => {
            debug_assert!(false, "put_addr with a header that holds no address");
            return;
        }
    };
    slot.display = display;
    slot.uri = uri;
    slot.params = params;
}

/// A comma-separated token list as the text of a [`TokenList`]: the slice
/// of the message itself when its tokens are already joined by `", "` (the
/// usual case: no copy), otherwise the tokens joined that way.
fn list_text<'a>(src: &ByteString, s: &'a str) -> Result<ByteString, &'a str> {
    let start = skip_ws(s);
    if start.is_empty() {
        return Ok(ByteString::new());
    }
    // The usual case in one pass over the bytes: tokens separated by
    // exactly ", ", nothing after the last one but white space.
    let text = trim_ws_end(start);
    if is_canonical_list(text.as_bytes()) {
        return Ok(sub(src, text));
    }
    // Anything else (other spacing, or an error to locate): token by token.
    let mut s = start;
    let mut canonical = true;
    loop {
        let (r, _) = tok(s)?;
        match list_next(r)? {
            Some(n) => {
                // Exactly ", " between this token and the next.
                canonical &= r.as_bytes().starts_with(b", ") && n.len() + 2 == r.len();
                s = n;
            }
            None if canonical => return Ok(sub(src, &start[..start.len() - r.len()])),
            None => break,
        }
    }
    token_list_of(start, |t| t).map(|v| joined(v.into_iter().map(ByteString::from)))
}

/// Whether `b` is non-empty tokens joined by exactly `", "`. One loop over
/// the bytes with a table lookup each: list tokens are short (`ACK`,
/// `timer`), so a run-at-a-time scan spent more on setting up each run than
/// on the bytes.
fn is_canonical_list(b: &[u8]) -> bool {
    use crate::text::{CLASS, TOKEN};
    // `expect_token`: at the start, or just after ", ".
    let mut expect_token = true;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if CLASS[usize::from(c)] & TOKEN != 0 {
            expect_token = false;
            i += 1;
        } else if c == b',' && !expect_token && b.get(i + 1) == Some(&b' ') {
            expect_token = true;
            i += 2;
        } else {
            return false;
        }
    }
    !expect_token
}

/// A comma-separated list of tokens, each turned into a `T` by `item`.
fn token_list_of<'a, T>(s: &'a str, mut item: impl FnMut(&'a str) -> T) -> Result<Vec<T>, &'a str> {
    let mut s = skip_ws(s);
    if s.is_empty() {
        return Ok(Vec::new());
    }
    // One allocation of the right size: a token has no comma in it.
    let mut out = Vec::with_capacity(1 + memchr::memchr_iter(b',', s.as_bytes()).count());
    loop {
        let (r, t) = tok(s)?;
        out.push(item(t));
        match list_next(r)? {
            Some(n) => s = n,
            None => return Ok(out),
        }
    }
}

fn token_params<'a>(src: &ByteString, s: &'a str) -> VRes<'a, TokenParams> {
    let (r, t) = tok(skip_ws(s))?;
    let (r, params) = params(src, r)?;
    Ok((r, TokenParams { value: sub(src, t), params }))
}

fn delta_params<'a>(src: &ByteString, s: &'a str, comment: bool) -> VRes<'a, DeltaParams> {
    let (mut r, d) = delta(skip_ws(s))?;
    let mut c = None;
    if comment {
        let t = skip_ws(r);
        if t.starts_with('(') {
            let mut depth = 0usize;
            let mut end = None;
            for (i, ch) in t.char_indices() {
                match ch {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(i);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let end = end.ok_or(t)?;
            c = Some(sub(src, &t[..=end]));
            r = &t[end + 1..];
        }
    }
    let (r, params) = params(src, r)?;
    Ok((r, DeltaParams { delta: d, comment: c, params }))
}

fn auth_value<'a>(src: &ByteString, s: &'a str) -> VRes<'a, (ByteString, bool)> {
    if s.starts_with('"') {
        let (r, raw) = quoted_raw(s).map_err(|e| nom_pos(e, s))?;
        Ok((r, (quoted_value(src, raw), true)))
    } else {
        let end = s.bytes().position(|b| matches!(b, b',' | b'"' | b' ' | b'\t')).unwrap_or(s.len());
        if end == 0 {
            return Err(s);
        }
        Ok((&s[end..], (sub(src, &s[..end]), false)))
    }
}

/// One or more challenges/credentials on one line.
fn auths<'a>(src: &ByteString, s: &'a str) -> Result<Vec<Auth>, &'a str> {
    let mut out = Vec::new();
    let mut s = skip_ws(s);
    loop {
        let (r, scheme) = tok(s)?;
        let mut cur = Auth { scheme: sub(src, scheme), params: Vec::new() };
        let mut r = skip_ws(r);
        if r.is_empty() {
            out.push(cur);
            return Ok(out);
        }
        loop {
            let (after_name, name) = tok(r)?;
            let v = sep_char(after_name, '=')?;
            let (after, (value, quoted)) = auth_value(src, v)?;
            cur.params.push(AuthParam { name: sub(src, name), value, quoted });
            match list_next(after)? {
                None => {
                    out.push(cur);
                    return Ok(out);
                }
                Some(next) => {
                    // A new challenge starts with `scheme LWS name=`.
                    if let Ok((rest, _)) = token(next)
                        && rest.starts_with(is_ws)
                        && !skip_ws(rest).starts_with('=')
                    {
                        out.push(cur);
                        s = next;
                        break;
                    }
                    r = next;
                }
            }
        }
    }
}

fn call_id(s: &str) -> Result<&str, &str> {
    let v = trim_ws_end(skip_ws(s));
    // word ["@" word]: one '@' at most, neither side empty.
    use crate::text::{WORD, long_run_of as run_of};
    let first = run_of(v, WORD);
    if first == 0 {
        return Err(s);
    }
    if first == v.len() {
        return Ok(v);
    }
    let rest = &v[first..];
    match rest.strip_prefix('@') {
        Some(host) if !host.is_empty() && run_of(host, WORD) == host.len() => Ok(v),
        _ => Err(s),
    }
}

fn warning<'a>(src: &ByteString, s: &'a str) -> VRes<'a, Warning> {
    let s = skip_ws(s);
    if s.len() < 3 || !s.as_bytes()[..3].iter().all(u8::is_ascii_digit) {
        return Err(s);
    }
    let code: u16 = s[..3].parse().map_err(|_| s)?;
    let r = s[3..].strip_prefix(' ').ok_or(&s[3..])?;
    let end = r.find(' ').ok_or(r)?;
    let agent = &r[..end];
    if agent.is_empty() {
        return Err(r);
    }
    let t = &r[end + 1..];
    let (rest, raw) = quoted_raw(t).map_err(|e| nom_pos(e, t))?;
    Ok((rest, Warning { code, agent: sub(src, agent), text: quoted_value(src, raw) }))
}

/// Parses a value for `name` and pushes the resulting header(s).
/// On error returns the byte offset inside `src` where it failed.
pub(crate) fn parse_value(name: HeaderName, src: &ByteString, v: &str, out: &mut Vec<Header>) -> Result<(), usize> {
    let pos = |p: &str| (p.as_ptr() as usize).saturating_sub(v.as_ptr() as usize).min(v.len());
    let r = parse_value_inner(name, src, v, out);
    r.map_err(pos)
}

fn addr_list<'a>(
    src: &ByteString,
    v: &'a str,
    addr_spec: bool,
    out: &mut Vec<Header>,
    wrap: impl Fn(NameAddr) -> Header + Copy,
) -> Result<(), &'a str> {
    let mut s = v;
    loop {
        let r = name_addr(src, s, addr_spec, out, wrap)?;
        match list_next(r)? {
            Some(n) => s = n,
            None => return Ok(()),
        }
    }
}

fn parse_value_inner<'a>(name: HeaderName, src: &ByteString, v: &'a str, out: &mut Vec<Header>) -> Result<(), &'a str> {
    use HeaderName as N;
    let single_u32 = |v: &'a str| -> Result<u32, &'a str> {
        let (r, n) = u32_val(skip_ws(v))?;
        expect_end(r)?;
        Ok(n)
    };
    match name {
        N::Via => {
            let mut s = skip_ws(v);
            loop {
                let (r, via) = via(src, s)?;
                out.push(Header::Via(via));
                match list_next(r)? {
                    Some(n) => s = n,
                    None => break,
                }
            }
        }
        N::From | N::To | N::ReferTo | N::ReferredBy => {
            // One call per variant, so each builds its header in place.
            let r = match name {
                N::From => name_addr(src, v, true, out, Header::From)?,
                N::To => name_addr(src, v, true, out, Header::To)?,
                N::ReferTo => name_addr(src, v, true, out, Header::ReferTo)?,
                _ => name_addr(src, v, true, out, Header::ReferredBy)?,
            };
            if let Err(e) = expect_end(r) {
                // A single address: nothing may follow it.
                out.pop();
                return Err(e);
            }
        }
        N::Contact => {
            if skip_ws(v).starts_with('*') && skip_ws(&skip_ws(v)[1..]).is_empty() {
                out.push(Header::Contact(Contact::Any));
            } else {
                addr_list(src, v, true, out, |a| Header::Contact(Contact::Addr(a)))?;
            }
        }
        N::Route => addr_list(src, v, false, out, Header::Route)?,
        N::RecordRoute => addr_list(src, v, false, out, Header::RecordRoute)?,
        N::PAssertedIdentity => addr_list(src, v, false, out, Header::PAssertedIdentity)?,
        N::CallId => {
            let c = call_id(v)?;
            emplace(out, || Header::CallId(sub(src, c)));
        }
        N::CSeq => {
            let (r, seq) = u32_val(skip_ws(v))?;
            let r2 = skip_ws(r);
            if r2.len() == r.len() {
                return Err(r);
            }
            let (r, m) = tok(r2)?;
            expect_end(r)?;
            if seq >= 1 << 31 {
                return Err(v);
            }
            // The method set in place: built whole, the header was copied
            // into its slot with a memcpy call.
            let method = Method::from_src(src, m);
            emplace(out, || Header::CSeq(CSeq { seq, method: Method::Invite }));
            if let Some(Header::CSeq(c)) = out.last_mut() {
                c.method = method;
            }
        }
        N::MaxForwards => {
            // RFC 3261 §20.22: a value in 0..=255 (RFC 4475 §3.1.2.4 scalar02).
            let n = single_u32(v)?;
            if n > 255 {
                return Err(skip_ws(v));
            }
            emplace(out, || Header::MaxForwards(n));
        }
        N::ContentLength => {
            let n = single_u32(v)?;
            emplace(out, || Header::ContentLength(n));
        }
        N::RSeq => {
            let n = single_u32(v)?;
            emplace(out, || Header::RSeq(n));
        }
        N::Expires | N::MinExpires => {
            let (r, n) = delta(skip_ws(v))?;
            expect_end(r)?;
            out.push(if name == N::Expires { Header::Expires(n) } else { Header::MinExpires(n) });
        }
        N::ContentType => {
            let s = skip_ws(v);
            let (r, t) = tok(s)?;
            let r = sep_char(r, '/')?;
            let (r, st) = tok(r)?;
            let (r, params) = params(src, r)?;
            expect_end(r)?;
            emplace(out, || {
                Header::ContentType(MediaType {
                    mtype: crate::text::sub(src, t),
                    subtype: crate::text::sub(src, st),
                    params,
                })
            });
        }
        N::ContentDisposition | N::Event | N::SubscriptionState => {
            let (r, tp) = token_params(src, v)?;
            expect_end(r)?;
            out.push(match name {
                N::ContentDisposition => Header::ContentDisposition(tp),
                N::Event => Header::Event(tp),
                _ => Header::SubscriptionState(tp),
            });
        }
        N::Replaces => {
            let s = skip_ws(v);
            let end = s.bytes().position(|b| matches!(b, b';' | b' ' | b'\t')).unwrap_or(s.len());
            let id = call_id(&s[..end])?;
            let (r, params) = params(src, &s[end..])?;
            expect_end(r)?;
            out.push(Header::Replaces(TokenParams { value: sub(src, id), params }));
        }
        N::Reason => {
            let mut s = v;
            loop {
                let (r, tp) = token_params(src, s)?;
                out.push(Header::Reason(tp));
                match list_next(r)? {
                    Some(n) => s = n,
                    None => break,
                }
            }
        }
        N::SessionExpires | N::MinSe | N::RetryAfter => {
            let (r, d) = delta_params(src, v, name == N::RetryAfter)?;
            expect_end(r)?;
            out.push(match name {
                N::SessionExpires => Header::SessionExpires(d),
                N::MinSe => Header::MinSe(d),
                _ => Header::RetryAfter(d),
            });
        }
        N::ContentEncoding
        | N::Require
        | N::ProxyRequire
        | N::Supported
        | N::Unsupported
        | N::AllowEvents
        | N::Allow => {
            let t = TokenList(list_text(src, v)?);
            emplace(out, || match name {
                N::ContentEncoding => Header::ContentEncoding(t),
                N::Require => Header::Require(t),
                N::ProxyRequire => Header::ProxyRequire(t),
                N::Supported => Header::Supported(t),
                N::Unsupported => Header::Unsupported(t),
                N::AllowEvents => Header::AllowEvents(t),
                _ => Header::Allow(MethodList(t)),
            });
        }
        N::Privacy => {
            let mut list = Vec::new();
            for item in v.split(';') {
                let t = item.trim_matches(is_ws);
                if t.is_empty() || !t.chars().all(is_token_char) {
                    return Err(item);
                }
                list.push(sub(src, t));
            }
            out.push(Header::Privacy(list));
        }
        N::WwwAuthenticate | N::ProxyAuthenticate | N::Authorization | N::ProxyAuthorization => {
            for a in auths(src, v)? {
                out.push(match name {
                    N::WwwAuthenticate => Header::WwwAuthenticate(a),
                    N::ProxyAuthenticate => Header::ProxyAuthenticate(a),
                    N::Authorization => Header::Authorization(a),
                    _ => Header::ProxyAuthorization(a),
                });
            }
        }
        N::RAck => {
            let (r, rseq) = u32_val(skip_ws(v))?;
            let r = skip_ws(r);
            let (r, cseq) = u32_val(r)?;
            let r2 = skip_ws(r);
            if r2.len() == r.len() {
                return Err(r);
            }
            let (r, m) = tok(r2)?;
            expect_end(r)?;
            out.push(Header::RAck(RAck { rseq, cseq, method: Method::from_src(src, m) }));
        }
        N::Warning => {
            let mut s = v;
            loop {
                let (r, w) = warning(src, s)?;
                out.push(Header::Warning(w));
                match list_next(r)? {
                    Some(n) => s = n,
                    None => break,
                }
            }
        }
        N::UserAgent => emplace(out, || Header::UserAgent(sub(src, v))),
        N::Server => emplace(out, || Header::Server(sub(src, v))),
        N::Subject => emplace(out, || Header::Subject(sub(src, v))),
    }
    Ok(())
}

#[cfg(test)]
mod lookup_tests {
    use super::HeaderName;

    const ALL: &[HeaderName] = &[
        HeaderName::Via,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
        HeaderName::Contact,
        HeaderName::MaxForwards,
        HeaderName::ContentLength,
        HeaderName::ContentType,
        HeaderName::ContentDisposition,
        HeaderName::ContentEncoding,
        HeaderName::Route,
        HeaderName::RecordRoute,
        HeaderName::Require,
        HeaderName::ProxyRequire,
        HeaderName::Supported,
        HeaderName::Unsupported,
        HeaderName::Allow,
        HeaderName::AllowEvents,
        HeaderName::Expires,
        HeaderName::MinExpires,
        HeaderName::WwwAuthenticate,
        HeaderName::ProxyAuthenticate,
        HeaderName::Authorization,
        HeaderName::ProxyAuthorization,
        HeaderName::RSeq,
        HeaderName::RAck,
        HeaderName::ReferTo,
        HeaderName::ReferredBy,
        HeaderName::Replaces,
        HeaderName::Event,
        HeaderName::SubscriptionState,
        HeaderName::SessionExpires,
        HeaderName::MinSe,
        HeaderName::Reason,
        HeaderName::Privacy,
        HeaderName::PAssertedIdentity,
        HeaderName::UserAgent,
        HeaderName::Server,
        HeaderName::Subject,
        HeaderName::Warning,
        HeaderName::RetryAfter,
    ];

    #[test]
    fn lookup_every_name() {
        for &n in ALL {
            assert_eq!(HeaderName::lookup(n.as_str()), Some(n), "{}", n.as_str());
            assert_eq!(HeaderName::lookup(&n.as_str().to_ascii_uppercase()), Some(n));
            assert_eq!(HeaderName::lookup(&n.as_str().to_ascii_lowercase()), Some(n));
            if let Some(c) = n.compact() {
                assert_eq!(HeaderName::lookup(&c.to_string()), Some(n));
                assert_eq!(HeaderName::lookup(&c.to_ascii_uppercase().to_string()), Some(n));
            }
        }
        for other in ["X-Foo", "Vía", "Fron", "", "Contacts", "Call-IDx", "a"] {
            assert_eq!(HeaderName::lookup(other), None, "{other}");
        }
    }
}

#[cfg(test)]
mod name_tests {
    use super::HeaderName;

    #[test]
    fn lookup_folds_case_but_nothing_else() {
        assert_eq!(HeaderName::lookup("call-id"), Some(HeaderName::CallId));
        assert_eq!(HeaderName::lookup("CALL-ID"), Some(HeaderName::CallId));
        assert_eq!(HeaderName::lookup("I"), Some(HeaderName::CallId));
        // CR differs from '-' only in the case bit: it must not match.
        assert_eq!(HeaderName::lookup("Call\rID"), None);
        assert_eq!(HeaderName::lookup("Call_ID"), None);
        assert_eq!(HeaderName::lookup("Max-Forwards"), Some(HeaderName::MaxForwards));
        assert_eq!(HeaderName::lookup("Max\rForwards"), None);
        assert_eq!(HeaderName::lookup("Via"), Some(HeaderName::Via));
        assert_eq!(HeaderName::lookup("V\x09a"), None);
    }
}

#[cfg(test)]
mod list_tests {
    use super::*;
    use crate::SipMessage;

    fn message(raw: &str) -> Result<SipMessage, crate::ParseError> {
        let msg = format!(
            "OPTIONS sip:a@b SIP/2.0\r\n{raw}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n\
             To: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        SipMessage::parse(bytes::Bytes::from(msg))
    }

    /// The first header of a message whose first line is `raw`.
    fn first(raw: &str) -> Header {
        message(raw).unwrap().headers().iter().next().cloned().unwrap()
    }

    #[test]
    fn a_list_written_with_comma_space_is_kept_as_written() {
        let long = "Supported: 100rel, timer, replaces, norefersub, gruu";
        let Header::Supported(l) = first(long) else { panic!("not Supported") };
        assert_eq!(l.as_str(), "100rel, timer, replaces, norefersub, gruu");
        assert_eq!(l.iter().collect::<Vec<_>>(), ["100rel", "timer", "replaces", "norefersub", "gruu"]);
        assert_eq!(l.len(), 5);
        assert!(l.contains("TIMER") && l.contains("gruu") && !l.contains("time"));
        // Printed as read.
        let mut out = Vec::new();
        Header::Supported(l).write(&mut out);
        assert_eq!(out, format!("{long}\r\n").as_bytes());
    }

    #[test]
    fn other_spacing_is_normalised_and_bad_lists_are_rejected() {
        let Header::Require(l) = first("Require:100rel ,timer,\t replaces  ") else { panic!("not Require") };
        assert_eq!(l.as_str(), "100rel, timer, replaces");
        assert_eq!(l, ["100rel", "timer", "replaces"].into_iter().collect::<TokenList>());
        let Header::Supported(e) = first("Supported:") else { panic!("not Supported") };
        assert_eq!(e.len(), 0);
        assert!(e.is_empty() && e.iter().next().is_none() && !e.contains(""));
        for bad in ["Require: a,,b", "Require: a b", "Require: a,", "Require: ,a", "Allow: INVITE;x"] {
            assert!(message(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn method_lists_yield_methods() {
        let Header::Allow(m) = first("Allow: INVITE,ACK, BYE , FOO") else { panic!("not Allow") };
        assert_eq!(m.as_str(), "INVITE, ACK, BYE, FOO");
        assert_eq!(m.iter().collect::<Vec<_>>(), [Method::Invite, Method::Ack, Method::Bye, "FOO".parse().unwrap()]);
        assert!(m.contains(&Method::Bye) && !m.contains(&Method::Cancel));
        // Method names are case-sensitive: "invite" is an extension method.
        let Header::Allow(lower) = first("Allow: invite") else { panic!("not Allow") };
        assert!(!lower.contains(&Method::Invite));
        assert_eq!(
            m,
            [Method::Invite, Method::Ack, Method::Bye, "FOO".parse().unwrap()].into_iter().collect::<MethodList>()
        );
        assert_eq!(MethodList::from_static("INVITE, ACK").len(), 2);
        assert_eq!(format!("{:?}", TokenList::from_static("a, b")), "[\"a\", \"b\"]");
    }
}

#[cfg(test)]
mod sent_by_tests {
    use super::Via;
    use crate::Host;

    #[test]
    fn a_sent_by_is_the_host_and_port_as_printed() {
        // IPv4 addresses and ports of every width, no port, a name, IPv6:
        // the server transaction key of RFC 3261 §17.2.3.
        let v4 = [[0, 0, 0, 0], [9, 10, 99, 100], [127, 0, 0, 1], [255, 255, 255, 255]];
        for a in v4 {
            for port in [None, Some(0), Some(5), Some(5060), Some(65535)] {
                let ip = std::net::Ipv4Addr::from(a);
                let via = Via::new("UDP", Host::Ipv4(ip), port, "z9hG4bK1");
                let expect = match port {
                    Some(p) => format!("{ip}:{p}"),
                    None => ip.to_string(),
                };
                assert_eq!(via.sent_by(), expect.as_str());
                // Word for word the inline string the text makes (equality
                // and hashing of inline strings read the words).
                assert_eq!(via.sent_by().short_words(), crate::ByteString::from(expect.as_str()).short_words());
            }
        }
        let named = Via::new("TLS", Host::Domain("proxy.example.com".into()), Some(5061), "z9hG4bK1");
        assert_eq!(named.sent_by(), "proxy.example.com:5061");
        let v6 = Via::new("UDP", Host::Ipv6("2001:db8::1".parse().unwrap()), None, "z9hG4bK1");
        assert_eq!(v6.sent_by(), "[2001:db8::1]");
    }
}
