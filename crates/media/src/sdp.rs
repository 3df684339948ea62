//! SDP (RFC 8866): a parser and a printer with typed accessors.
//!
//! [`SessionDescription::parse`] reads any SDP, WebRTC-style or plain
//! RTP/AVP, and never panics: malformed input is a [`SdpError`] naming the
//! line. Its `Display` (`to_string`) prints the lines in the RFC 8866
//! order (`v o s i u e p c b t r z k a m`), each ending in CRLF, so
//! `parse(print(x)) == x`.
//!
//! Attributes are kept in their order as [`Attribute`] name/value pairs;
//! typed accessors read the common ones (`rtpmap`, `fmtp`, `ptime`, the
//! direction, `rtcp`, `rtcp-mux`, `mid`, `ice-ufrag`, `ice-pwd`,
//! `fingerprint`, `setup`) and keep `candidate` lines raw.
//!
//! ```
//! use sipact_media::sdp::{SessionDescription, Direction};
//! let sdp = "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
//!            m=audio 49170 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n";
//! let desc = SessionDescription::parse(sdp.as_bytes()).unwrap();
//! assert_eq!(desc.media[0].port, 49170);
//! assert_eq!(desc.media_direction(0), Direction::SendOnly);
//! assert_eq!(desc.media[0].rtpmap(0).unwrap().encoding, "PCMU");
//! assert_eq!(desc.to_string(), sdp);
//! ```

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::str::FromStr;

/// Why an SDP could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The body is not UTF-8.
    #[error("SDP is not UTF-8 (byte {offset})")]
    NotUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// A line is not `<type>=<value>`.
    #[error("line {line}: not a <type>=<value> line")]
    MalformedLine {
        /// 1-based line number.
        line: usize,
    },
    /// A type letter this parser does not know (RFC 8866 §5: reject).
    #[error("line {line}: unknown type {kind:?}")]
    UnknownType {
        /// 1-based line number.
        line: usize,
        /// The type letter.
        kind: char,
    },
    /// A line where its type is not allowed (e.g. `t=` inside a media section).
    #[error("line {line}: {kind:?} line out of place")]
    UnexpectedLine {
        /// 1-based line number.
        line: usize,
        /// The type letter.
        kind: char,
    },
    /// A field's value is invalid.
    #[error("line {line}: invalid {field}")]
    InvalidValue {
        /// 1-based line number.
        line: usize,
        /// Which field (`origin`, `media`, `connection`...).
        field: &'static str,
    },
    /// A mandatory line is missing.
    #[error("missing {field} line")]
    Missing {
        /// `v`, `o`, `s` or `t`.
        field: &'static str,
    },
}

/// The `o=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Username (`-` when none).
    pub username: String,
    /// Session id (numeric).
    pub session_id: u64,
    /// Session version, incremented on each changed description (RFC 3264 §8).
    pub session_version: u64,
    /// Network type (`IN`).
    pub net_type: String,
    /// Address type (`IP4`, `IP6`).
    pub addr_type: String,
    /// Unicast address (or FQDN).
    pub address: String,
}

/// A `c=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Network type (`IN`).
    pub net_type: String,
    /// Address type (`IP4`, `IP6`).
    pub addr_type: String,
    /// The address, with any `/ttl/count` suffix kept as written.
    pub address: String,
}

impl Connection {
    /// `IN IP4 a` or `IN IP6 a` for an IP address.
    pub fn ip(addr: IpAddr) -> Self {
        let addr_type = if addr.is_ipv4() { "IP4" } else { "IP6" };
        Connection { net_type: "IN".into(), addr_type: addr_type.into(), address: addr.to_string() }
    }

    /// The address as an IP address, without any multicast suffix.
    pub fn ip_addr(&self) -> Option<IpAddr> {
        let a = self.address.split('/').next().unwrap_or_default();
        IpAddr::from_str(a).ok()
    }
}

/// A `b=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    /// Type (`AS`, `CT`, `TIAS`...).
    pub bwtype: String,
    /// Value.
    pub bandwidth: u64,
}

/// A `t=` line with its `r=` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// Start time (NTP seconds; 0 for unbounded).
    pub start: u64,
    /// Stop time (NTP seconds; 0 for unbounded).
    pub stop: u64,
    /// `r=` lines, kept raw.
    pub repeats: Vec<String>,
}

/// An `a=` line: `name` or `name:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Name.
    pub name: String,
    /// Value after the colon, if any.
    pub value: Option<String>,
}

impl Attribute {
    /// A property attribute (`a=name`).
    pub fn flag(name: &str) -> Self {
        Attribute { name: name.into(), value: None }
    }
    /// A value attribute (`a=name:value`).
    pub fn new(name: &str, value: impl Into<String>) -> Self {
        Attribute { name: name.into(), value: Some(value.into()) }
    }
}

/// The media direction attributes (RFC 3264 §5.1, §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// `a=sendrecv` (the default).
    #[default]
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
    /// Parses an attribute name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
    /// The direction seen from the other side (sendonly ↔ recvonly).
    pub fn reverse(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }
    /// Whether this side sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
    /// Whether this side receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type.
    pub payload_type: u8,
    /// Encoding name (`PCMU`, `opus`, `telephone-event`).
    pub encoding: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channels (audio), if given.
    pub channels: Option<u16>,
}

impl RtpMap {
    /// Parses an rtpmap value.
    pub fn parse(value: &str) -> Option<Self> {
        let (pt, rest) = value.trim().split_once(' ')?;
        let payload_type = pt.parse().ok()?;
        let mut parts = rest.trim().split('/');
        let encoding = parts.next()?.to_string();
        let clock_rate = parts.next()?.parse().ok()?;
        let channels = match parts.next() {
            Some(c) => Some(c.parse().ok()?),
            None => None,
        };
        if encoding.is_empty() || parts.next().is_some() {
            return None;
        }
        Some(RtpMap { payload_type, encoding, clock_rate, channels })
    }

    /// The static RTP/AVP mapping (RFC 3551) for payload types 0 and 8 (and a few more).
    pub fn static_type(payload_type: u8) -> Option<Self> {
        let (encoding, clock_rate) = match payload_type {
            0 => ("PCMU", 8000),
            3 => ("GSM", 8000),
            4 => ("G723", 8000),
            8 => ("PCMA", 8000),
            9 => ("G722", 8000),
            18 => ("G729", 8000),
            _ => return None,
        };
        Some(RtpMap { payload_type, encoding: encoding.into(), clock_rate, channels: None })
    }

    /// The attribute value.
    pub fn value(&self) -> String {
        match self.channels {
            Some(c) => format!("{} {}/{}/{}", self.payload_type, self.encoding, self.clock_rate, c),
            None => format!("{} {}/{}", self.payload_type, self.encoding, self.clock_rate),
        }
    }
}

/// `a=rtcp:<port> [IN IP4 <addr>]` (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpAttr {
    /// RTCP port.
    pub port: u16,
    /// The address, when given.
    pub connection: Option<Connection>,
}

/// `a=fingerprint:<hash> <value>` (RFC 8122).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hash function (`sha-256`).
    pub hash: String,
    /// Colon-separated hex bytes.
    pub value: String,
}

/// `a=setup` (RFC 4145).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// `active`.
    Active,
    /// `passive`.
    Passive,
    /// `actpass`.
    ActPass,
    /// `holdconn`.
    HoldConn,
}

/// The attribute list shared by the session and media levels.
fn find<'a>(attrs: &'a [Attribute], name: &str) -> impl Iterator<Item = &'a Attribute> {
    attrs.iter().filter(move |a| a.name.eq_ignore_ascii_case(name))
}

fn value_of<'a>(attrs: &'a [Attribute], name: &str) -> Option<&'a str> {
    find(attrs, name).find_map(|a| a.value.as_deref())
}

fn direction_of(attrs: &[Attribute]) -> Option<Direction> {
    attrs.iter().rev().find_map(|a| if a.value.is_none() { Direction::from_name(&a.name) } else { None })
}

fn set_direction_in(attrs: &mut Vec<Attribute>, dir: Direction) {
    let pos = attrs.iter().position(|a| a.value.is_none() && Direction::from_name(&a.name).is_some());
    attrs.retain(|a| !(a.value.is_none() && Direction::from_name(&a.name).is_some()));
    let attr = Attribute::flag(dir.as_str());
    match pos {
        Some(p) if p <= attrs.len() => attrs.insert(p, attr),
        _ => attrs.push(attr),
    }
}

/// An `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// Media type (`audio`, `video`, `application`).
    pub media: String,
    /// Port; 0 rejects or disables the stream (RFC 3264 §5.1).
    pub port: u16,
    /// `/<number of ports>`, if given.
    pub num_ports: Option<u16>,
    /// Transport protocol (`RTP/AVP`, `UDP/TLS/RTP/SAVPF`).
    pub proto: String,
    /// Formats (payload types for RTP).
    pub formats: Vec<String>,
    /// `i=`.
    pub information: Option<String>,
    /// `c=` lines.
    pub connections: Vec<Connection>,
    /// `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `k=` (obsolete, kept).
    pub key: Option<String>,
    /// `a=` lines, in order.
    pub attributes: Vec<Attribute>,
}

impl MediaDescription {
    /// A media section with no attributes.
    pub fn new(media: &str, port: u16, proto: &str, formats: Vec<String>) -> Self {
        MediaDescription {
            media: media.into(),
            port,
            num_ports: None,
            proto: proto.into(),
            formats,
            information: None,
            connections: Vec::new(),
            bandwidths: Vec::new(),
            key: None,
            attributes: Vec::new(),
        }
    }

    /// Attributes named `name` (case-insensitive).
    pub fn attributes_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Attribute> + 'a {
        find(&self.attributes, name)
    }
    /// The value of the first attribute named `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        value_of(&self.attributes, name)
    }
    /// Whether a property attribute (or any attribute) named `name` is present.
    pub fn has_attribute(&self, name: &str) -> bool {
        find(&self.attributes, name).next().is_some()
    }
    /// Payload types of the formats that are numbers.
    pub fn payload_types(&self) -> Vec<u8> {
        self.formats.iter().filter_map(|f| f.parse().ok()).collect()
    }
    /// All `a=rtpmap` entries that parse.
    pub fn rtpmaps(&self) -> Vec<RtpMap> {
        find(&self.attributes, "rtpmap").filter_map(|a| a.value.as_deref().and_then(RtpMap::parse)).collect()
    }
    /// The rtpmap of `pt`, or its static RFC 3551 mapping.
    pub fn rtpmap(&self, pt: u8) -> Option<RtpMap> {
        self.rtpmaps().into_iter().find(|m| m.payload_type == pt).or_else(|| RtpMap::static_type(pt))
    }
    /// The `a=fmtp` parameters of `pt`.
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        find(&self.attributes, "fmtp").find_map(|a| {
            let v = a.value.as_deref()?;
            let (p, params) = v.split_once(' ').unwrap_or((v, ""));
            (p.parse::<u8>().ok()? == pt).then_some(params.trim())
        })
    }
    /// `a=ptime` in milliseconds.
    pub fn ptime(&self) -> Option<u32> {
        self.attribute("ptime").and_then(|v| v.trim().parse().ok())
    }
    /// The media-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.attributes)
    }
    /// Replaces the direction attribute (keeping its place).
    pub fn set_direction(&mut self, dir: Direction) {
        set_direction_in(&mut self.attributes, dir);
    }
    /// `a=rtcp`.
    pub fn rtcp(&self) -> Option<RtcpAttr> {
        let v = self.attribute("rtcp")?;
        let mut it = v.split_whitespace();
        let port = it.next()?.parse().ok()?;
        let connection = match (it.next(), it.next(), it.next()) {
            (Some(n), Some(t), Some(a)) => {
                Some(Connection { net_type: n.into(), addr_type: t.into(), address: a.into() })
            }
            _ => None,
        };
        Some(RtcpAttr { port, connection })
    }
    /// `a=rtcp-mux` (RFC 5761).
    pub fn rtcp_mux(&self) -> bool {
        self.has_attribute("rtcp-mux")
    }
    /// `a=mid` (RFC 5888).
    pub fn mid(&self) -> Option<&str> {
        self.attribute("mid")
    }
    /// `a=ice-ufrag` at this level.
    pub fn ice_ufrag(&self) -> Option<&str> {
        self.attribute("ice-ufrag")
    }
    /// `a=ice-pwd` at this level.
    pub fn ice_pwd(&self) -> Option<&str> {
        self.attribute("ice-pwd")
    }
    /// `a=fingerprint` at this level.
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        fingerprint_of(&self.attributes)
    }
    /// `a=setup` at this level.
    pub fn setup(&self) -> Option<Setup> {
        setup_of(&self.attributes)
    }
    /// `a=candidate` values, raw.
    pub fn candidates(&self) -> impl Iterator<Item = &str> {
        find(&self.attributes, "candidate").filter_map(|a| a.value.as_deref())
    }
    /// The first `c=` line of this section.
    pub fn connection(&self) -> Option<&Connection> {
        self.connections.first()
    }
}

fn fingerprint_of(attrs: &[Attribute]) -> Option<Fingerprint> {
    let v = value_of(attrs, "fingerprint")?;
    let (hash, value) = v.trim().split_once(' ')?;
    Some(Fingerprint { hash: hash.into(), value: value.trim().into() })
}

fn setup_of(attrs: &[Attribute]) -> Option<Setup> {
    match value_of(attrs, "setup")?.trim() {
        "active" => Some(Setup::Active),
        "passive" => Some(Setup::Passive),
        "actpass" => Some(Setup::ActPass),
        "holdconn" => Some(Setup::HoldConn),
        _ => None,
    }
}

/// A whole session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `v=` (always 0).
    pub version: u32,
    /// `o=`.
    pub origin: Origin,
    /// `s=`.
    pub session_name: String,
    /// `i=`.
    pub information: Option<String>,
    /// `u=`.
    pub uri: Option<String>,
    /// `e=` lines.
    pub emails: Vec<String>,
    /// `p=` lines.
    pub phones: Vec<String>,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines with their `r=` lines.
    pub times: Vec<Timing>,
    /// `z=`, raw.
    pub zone: Option<String>,
    /// `k=` (obsolete, kept).
    pub key: Option<String>,
    /// Session-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// `m=` sections.
    pub media: Vec<MediaDescription>,
}

fn field<'a>(it: &mut impl Iterator<Item = &'a str>, line: usize, name: &'static str) -> Result<&'a str, SdpError> {
    it.next().ok_or(SdpError::InvalidValue { line, field: name })
}

fn num<T: FromStr>(s: &str, line: usize, name: &'static str) -> Result<T, SdpError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SdpError::InvalidValue { line, field: name });
    }
    s.parse().map_err(|_| SdpError::InvalidValue { line, field: name })
}

fn parse_connection(v: &str, line: usize) -> Result<Connection, SdpError> {
    let mut it = v.split(' ');
    let c = Connection {
        net_type: field(&mut it, line, "connection")?.into(),
        addr_type: field(&mut it, line, "connection")?.into(),
        address: field(&mut it, line, "connection")?.into(),
    };
    if it.next().is_some() || c.net_type.is_empty() || c.addr_type.is_empty() || c.address.is_empty() {
        return Err(SdpError::InvalidValue { line, field: "connection" });
    }
    Ok(c)
}

fn parse_bandwidth(v: &str, line: usize) -> Result<Bandwidth, SdpError> {
    let (t, b) = v.split_once(':').ok_or(SdpError::InvalidValue { line, field: "bandwidth" })?;
    if t.is_empty() || t.contains(' ') {
        return Err(SdpError::InvalidValue { line, field: "bandwidth" });
    }
    Ok(Bandwidth { bwtype: t.into(), bandwidth: num(b, line, "bandwidth")? })
}

fn parse_attribute(v: &str, line: usize) -> Result<Attribute, SdpError> {
    let (name, value) = match v.split_once(':') {
        Some((n, val)) => (n, Some(val.to_string())),
        None => (v, None),
    };
    if name.is_empty() || name.contains(' ') {
        return Err(SdpError::InvalidValue { line, field: "attribute" });
    }
    Ok(Attribute { name: name.into(), value })
}

fn parse_origin(v: &str, line: usize) -> Result<Origin, SdpError> {
    let mut it = v.split(' ');
    let username = field(&mut it, line, "origin")?.to_string();
    let session_id = num(field(&mut it, line, "origin")?, line, "origin")?;
    let session_version = num(field(&mut it, line, "origin")?, line, "origin")?;
    let net_type = field(&mut it, line, "origin")?.to_string();
    let addr_type = field(&mut it, line, "origin")?.to_string();
    let address = field(&mut it, line, "origin")?.to_string();
    if it.next().is_some() || [&username, &net_type, &addr_type, &address].iter().any(|s| s.is_empty()) {
        return Err(SdpError::InvalidValue { line, field: "origin" });
    }
    Ok(Origin { username, session_id, session_version, net_type, addr_type, address })
}

fn parse_media(v: &str, line: usize) -> Result<MediaDescription, SdpError> {
    let mut it = v.split(' ');
    let media = field(&mut it, line, "media")?;
    let port_field = field(&mut it, line, "media")?;
    let (port, num_ports) = match port_field.split_once('/') {
        Some((p, n)) => (num(p, line, "media")?, Some(num(n, line, "media")?)),
        None => (num(port_field, line, "media")?, None),
    };
    let proto = field(&mut it, line, "media")?;
    let formats: Vec<String> = it.map(String::from).collect();
    if media.is_empty() || proto.is_empty() || formats.iter().any(|f| f.is_empty()) {
        return Err(SdpError::InvalidValue { line, field: "media" });
    }
    let mut m = MediaDescription::new(media, port, proto, formats);
    m.num_ports = num_ports;
    Ok(m)
}

impl SessionDescription {
    /// A minimal description: `v=0`, the origin, `s=-`, `t=0 0`.
    pub fn new(origin: Origin) -> Self {
        SessionDescription {
            version: 0,
            origin,
            session_name: "-".into(),
            information: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            times: vec![Timing { start: 0, stop: 0, repeats: Vec::new() }],
            zone: None,
            key: None,
            attributes: Vec::new(),
            media: Vec::new(),
        }
    }

    /// Parses an SDP body. Lines may end in CRLF or LF.
    pub fn parse(input: &[u8]) -> Result<Self, SdpError> {
        let text = std::str::from_utf8(input).map_err(|e| SdpError::NotUtf8 { offset: e.valid_up_to() })?;
        let mut version = None;
        let mut origin = None;
        let mut session_name = None;
        let mut desc = SessionDescription::new(Origin {
            username: String::new(),
            session_id: 0,
            session_version: 0,
            net_type: String::new(),
            addr_type: String::new(),
            address: String::new(),
        });
        desc.times.clear();
        let mut lines = text.split('\n').enumerate().peekable();
        while let Some((idx, raw)) = lines.next() {
            let line = idx + 1;
            let l = raw.strip_suffix('\r').unwrap_or(raw);
            if l.is_empty() {
                // Only a trailing empty line (after the last newline) is allowed.
                if lines.peek().is_none() || lines.clone().all(|(_, r)| r.is_empty() || r == "\r") {
                    break;
                }
                return Err(SdpError::MalformedLine { line });
            }
            let mut chars = l.chars();
            let kind = chars.next().ok_or(SdpError::MalformedLine { line })?;
            if chars.next() != Some('=') {
                return Err(SdpError::MalformedLine { line });
            }
            let value = l.get(2..).ok_or(SdpError::MalformedLine { line })?;
            if let Some(m) = desc.media.last_mut() {
                match kind {
                    'i' => m.information = Some(value.into()),
                    'c' => m.connections.push(parse_connection(value, line)?),
                    'b' => m.bandwidths.push(parse_bandwidth(value, line)?),
                    'k' => m.key = Some(value.into()),
                    'a' => m.attributes.push(parse_attribute(value, line)?),
                    'm' => desc.media.push(parse_media(value, line)?),
                    'v' | 'o' | 's' | 'u' | 'e' | 'p' | 't' | 'r' | 'z' => {
                        return Err(SdpError::UnexpectedLine { line, kind });
                    }
                    _ => return Err(SdpError::UnknownType { line, kind }),
                }
                continue;
            }
            match kind {
                'v' => {
                    if version.is_some() || line != 1 {
                        return Err(SdpError::UnexpectedLine { line, kind });
                    }
                    version = Some(num::<u32>(value, line, "version")?);
                }
                'o' => {
                    if origin.is_some() {
                        return Err(SdpError::UnexpectedLine { line, kind });
                    }
                    origin = Some(parse_origin(value, line)?);
                }
                's' => {
                    if session_name.is_some() {
                        return Err(SdpError::UnexpectedLine { line, kind });
                    }
                    session_name = Some(value.to_string());
                }
                'i' => desc.information = Some(value.into()),
                'u' => desc.uri = Some(value.into()),
                'e' => desc.emails.push(value.into()),
                'p' => desc.phones.push(value.into()),
                'c' => desc.connection = Some(parse_connection(value, line)?),
                'b' => desc.bandwidths.push(parse_bandwidth(value, line)?),
                't' => {
                    let (s, e) = value.split_once(' ').ok_or(SdpError::InvalidValue { line, field: "timing" })?;
                    desc.times.push(Timing {
                        start: num(s, line, "timing")?,
                        stop: num(e, line, "timing")?,
                        repeats: Vec::new(),
                    });
                }
                'r' => match desc.times.last_mut() {
                    Some(t) => t.repeats.push(value.into()),
                    None => return Err(SdpError::UnexpectedLine { line, kind }),
                },
                'z' => desc.zone = Some(value.into()),
                'k' => desc.key = Some(value.into()),
                'a' => desc.attributes.push(parse_attribute(value, line)?),
                'm' => desc.media.push(parse_media(value, line)?),
                _ => return Err(SdpError::UnknownType { line, kind }),
            }
        }
        desc.version = version.ok_or(SdpError::Missing { field: "v" })?;
        desc.origin = origin.ok_or(SdpError::Missing { field: "o" })?;
        desc.session_name = session_name.ok_or(SdpError::Missing { field: "s" })?;
        if desc.times.is_empty() {
            return Err(SdpError::Missing { field: "t" });
        }
        Ok(desc)
    }

    /// The printed description as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// The value of the first session-level attribute named `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        value_of(&self.attributes, name)
    }
    /// The session-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.attributes)
    }
    /// Replaces the session-level direction attribute.
    pub fn set_direction(&mut self, dir: Direction) {
        set_direction_in(&mut self.attributes, dir);
    }
    /// The effective direction of media section `index`: its own attribute,
    /// else the session-level one, else `sendrecv` (RFC 3264 §5.1).
    pub fn media_direction(&self, index: usize) -> Direction {
        self.media.get(index).and_then(|m| m.direction()).or_else(|| self.direction()).unwrap_or_default()
    }
    /// The connection of media section `index`: its own `c=`, else the session's.
    pub fn media_connection(&self, index: usize) -> Option<&Connection> {
        self.media.get(index).and_then(|m| m.connection()).or(self.connection.as_ref())
    }
    /// `a=ice-ufrag` of section `index`, or the session's.
    pub fn ice_ufrag(&self, index: usize) -> Option<&str> {
        self.media.get(index).and_then(|m| m.ice_ufrag()).or_else(|| self.attribute("ice-ufrag"))
    }
    /// `a=ice-pwd` of section `index`, or the session's.
    pub fn ice_pwd(&self, index: usize) -> Option<&str> {
        self.media.get(index).and_then(|m| m.ice_pwd()).or_else(|| self.attribute("ice-pwd"))
    }
    /// `a=fingerprint` of section `index`, or the session's.
    pub fn fingerprint(&self, index: usize) -> Option<Fingerprint> {
        self.media.get(index).and_then(|m| m.fingerprint()).or_else(|| fingerprint_of(&self.attributes))
    }
    /// `a=setup` of section `index`, or the session's.
    pub fn setup(&self, index: usize) -> Option<Setup> {
        self.media.get(index).and_then(|m| m.setup()).or_else(|| setup_of(&self.attributes))
    }
}

impl FromStr for SessionDescription {
    type Err = SdpError;
    fn from_str(s: &str) -> Result<Self, SdpError> {
        SessionDescription::parse(s.as_bytes())
    }
}

fn write_connection(f: &mut fmt::Formatter<'_>, c: &Connection) -> fmt::Result {
    write!(f, "c={} {} {}\r\n", c.net_type, c.addr_type, c.address)
}

fn write_attribute(f: &mut fmt::Formatter<'_>, a: &Attribute) -> fmt::Result {
    match &a.value {
        Some(v) => write!(f, "a={}:{}\r\n", a.name, v),
        None => write!(f, "a={}\r\n", a.name),
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        write!(f, "v={}\r\n", self.version)?;
        write!(
            f,
            "o={} {} {} {} {} {}\r\n",
            o.username, o.session_id, o.session_version, o.net_type, o.addr_type, o.address
        )?;
        write!(f, "s={}\r\n", self.session_name)?;
        if let Some(i) = &self.information {
            write!(f, "i={i}\r\n")?;
        }
        if let Some(u) = &self.uri {
            write!(f, "u={u}\r\n")?;
        }
        for e in &self.emails {
            write!(f, "e={e}\r\n")?;
        }
        for p in &self.phones {
            write!(f, "p={p}\r\n")?;
        }
        if let Some(c) = &self.connection {
            write_connection(f, c)?;
        }
        for b in &self.bandwidths {
            write!(f, "b={}:{}\r\n", b.bwtype, b.bandwidth)?;
        }
        for t in &self.times {
            write!(f, "t={} {}\r\n", t.start, t.stop)?;
            for r in &t.repeats {
                write!(f, "r={r}\r\n")?;
            }
        }
        if let Some(z) = &self.zone {
            write!(f, "z={z}\r\n")?;
        }
        if let Some(k) = &self.key {
            write!(f, "k={k}\r\n")?;
        }
        for a in &self.attributes {
            write_attribute(f, a)?;
        }
        for m in &self.media {
            f.write_str("m=")?;
            f.write_str(&m.media)?;
            write!(f, " {}", m.port)?;
            if let Some(n) = m.num_ports {
                write!(f, "/{n}")?;
            }
            write!(f, " {}", m.proto)?;
            for fmt in &m.formats {
                f.write_char(' ')?;
                f.write_str(fmt)?;
            }
            f.write_str("\r\n")?;
            if let Some(i) = &m.information {
                write!(f, "i={i}\r\n")?;
            }
            for c in &m.connections {
                write_connection(f, c)?;
            }
            for b in &m.bandwidths {
                write!(f, "b={}:{}\r\n", b.bwtype, b.bandwidth)?;
            }
            if let Some(k) = &m.key {
                write!(f, "k={k}\r\n")?;
            }
            for a in &m.attributes {
                write_attribute(f, a)?;
            }
        }
        Ok(())
    }
}
