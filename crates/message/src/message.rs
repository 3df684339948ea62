//! Requests, responses and the message parser.

use std::fmt;

use crate::ByteString;
use crate::out::put;
use bytes::Bytes;

use crate::error::{ErrorKind, ParseError};
use crate::headers::{CSeq, Header, HeaderName, Headers, RawHeader, parse_value};
use crate::method::Method;
use crate::printer::HeaderWriter;
use crate::text::{find_u8, is_token_byte, is_ws, sub, write_u32};
use crate::uri::{Uri, parse_uri};

/// Size limits applied by the parser and the stream framer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest header section (start line and headers), in bytes. Default 64 KiB.
    pub max_header_bytes: usize,
    /// Most header lines. Default 256.
    pub max_headers: usize,
    /// Largest body, in bytes. Default 64 KiB.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_header_bytes: 64 * 1024, max_headers: 256, max_body_bytes: 64 * 1024 }
    }
}

/// A SIP version; only 2.0 is accepted by [`SipMessage::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Version {
    /// Major number.
    pub major: u8,
    /// Minor number.
    pub minor: u8,
}

impl Version {
    /// SIP/2.0.
    pub const SIP_2_0: Version = Version { major: 2, minor: 0 };
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Request-URI.
    pub uri: Uri,
    /// Version.
    pub version: Version,
    /// Headers in order.
    pub headers: Headers,
    /// Body bytes.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub body: Bytes,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Response {
    /// Version.
    pub version: Version,
    /// Status code, 100..=699.
    pub status: u16,
    /// Reason phrase.
    pub reason: ByteString,
    /// Headers in order.
    pub headers: Headers,
    /// Body bytes.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub body: Bytes,
}

/// A request or a response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum SipMessage {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

/// The default reason phrase for a status code (RFC 3261 §21 and extensions).
pub fn default_reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        580 => "Precondition Failure",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => match status / 100 {
            1 => "Session Progress",
            2 => "OK",
            3 => "Redirection",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

impl Request {
    /// A request with no headers and no body (room for the headers of a
    /// typical request is reserved, see [`Headers::with_room`]).
    pub fn new(method: Method, uri: Uri) -> Self {
        Request { method, uri, version: Version::SIP_2_0, headers: Headers::with_room(), body: Bytes::new() }
    }

    /// Prints the request (see [`SipMessage::write`]).
    pub fn write(&self, out: &mut Vec<u8>) {
        if self.version == Version::SIP_2_0 {
            write_request_line(out, &self.method, &self.uri);
        } else {
            put(out, self.method.as_str().as_bytes());
            out.push(b' ');
            self.uri.write(out);
            out.push(b' ');
            write_version(out, self.version);
            put(out, b"\r\n");
        }
        write_rest(out, &self.headers, &self.body);
    }

    /// The printed bytes.
    pub fn to_bytes(&self) -> Bytes {
        printed(|v| self.write(v))
    }

    /// The printed bytes of a bodiless response to this request with
    /// `status` and its default reason phrase, without building it (for a
    /// response that is only ever sent: a 100 Trying, the 200 to a BYE).
    /// The Via headers, From, To, Call-ID and CSeq are copied as they are
    /// (RFC 3261 §8.2.6.2), except that a To without a tag gets `to_tag`
    /// when one is given; `extra` then writes headers of its own.
    pub fn print_response(
        &self,
        status: u16,
        to_tag: Option<&str>,
        extra: impl FnOnce(&mut HeaderWriter<'_>),
    ) -> Bytes {
        printed(|out| {
            write_status_line(out, Version::SIP_2_0, status, default_reason(status));
            let mut w = HeaderWriter::new(out);
            for h in &self.headers {
                match h {
                    Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => w.header(h),
                    Header::To(to) => match to_tag {
                        Some(tag) if to.tag().is_none() => w.address(HeaderName::To, to, Some(tag)),
                        _ => w.header(h),
                    },
                    _ => {}
                }
            }
            extra(&mut w);
            put(out, b"Content-Length: 0\r\n\r\n");
        })
    }
}

impl Response {
    /// A response with the default reason phrase, no headers and no body
    /// (room for the headers of a typical response is reserved).
    pub fn new(status: u16) -> Self {
        Response {
            version: Version::SIP_2_0,
            status,
            reason: ByteString::from_static_at_run_time(default_reason(status)),
            headers: Headers::with_room(),
            body: Bytes::new(),
        }
    }

    /// Prints the response (see [`SipMessage::write`]).
    pub fn write(&self, out: &mut Vec<u8>) {
        write_status_line(out, self.version, self.status, &self.reason);
        write_rest(out, &self.headers, &self.body);
    }

    /// The printed bytes.
    pub fn to_bytes(&self) -> Bytes {
        printed(|v| self.write(v))
    }
}

/// Prints with `write` into this thread's scratch buffer, then copies the
/// result into a buffer of exactly its size. A message is printed once per
/// send and kept for retransmission: the exact size keeps that small, and
/// one small allocation (served by the allocator's per-thread cache) costs
/// less than a 1 KB one plus the shared header `Bytes` adds to a vector
/// whose length is not its capacity.
pub(crate) fn printed(write: impl FnOnce(&mut Vec<u8>)) -> Bytes {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    /// Larger scratch buffers (a message with a big body) are not kept.
    const KEEP: usize = 16 * 1024;
    let mut write = Some(write);
    let done = SCRATCH.try_with(|s| {
        let mut s = s.try_borrow_mut().ok()?;
        s.clear();
        (write.take()?)(&mut s);
        let b = Bytes::copy_from_slice(&s);
        if s.capacity() > KEEP {
            *s = Vec::new();
        }
        Some(b)
    });
    match (done, write) {
        (Ok(Some(b)), _) => b,
        // The scratch buffer is in use (a print inside a print) or gone
        // (thread exit): a buffer of its own.
        (_, Some(w)) => {
            let mut v = Vec::with_capacity(1024);
            w(&mut v);
            Bytes::from(v)
        }
        (_, None) => Bytes::new(),
    }
}

/// `METHOD uri SIP/2.0` and its line end.
pub(crate) fn write_request_line(out: &mut Vec<u8>, method: &Method, uri: &Uri) {
    put(out, method.as_str().as_bytes());
    out.push(b' ');
    uri.write(out);
    put(out, b" SIP/2.0\r\n");
}

fn write_status_line(out: &mut Vec<u8>, version: Version, status: u16, reason: &str) {
    write_version(out, version);
    out.push(b' ');
    write_u32(out, status.into());
    out.push(b' ');
    put(out, reason.as_bytes());
    put(out, b"\r\n");
}

fn write_version(out: &mut Vec<u8>, v: Version) {
    put(out, b"SIP/");
    write_u32(out, v.major.into());
    out.push(b'.');
    write_u32(out, v.minor.into());
}

/// Headers in order; Content-Length always printed with the true body length
/// (in place of a stored one, or appended last when none is stored).
fn write_rest(out: &mut Vec<u8>, headers: &Headers, body: &Bytes) {
    let mut wrote_len = false;
    for h in headers {
        if let Header::ContentLength(_) = h {
            if wrote_len {
                continue;
            }
            wrote_len = true;
            put(out, b"Content-Length: ");
            write_u32(out, u32::try_from(body.len()).unwrap_or(u32::MAX));
            put(out, b"\r\n");
        } else {
            h.write(out);
        }
    }
    if !wrote_len {
        put(out, b"Content-Length: ");
        write_u32(out, u32::try_from(body.len()).unwrap_or(u32::MAX));
        put(out, b"\r\n");
    }
    put(out, b"\r\n");
    put(out, body);
}

impl SipMessage {
    /// Parses one message from a datagram (or a frame cut by
    /// [`StreamFramer`](crate::StreamFramer)) with default [`Limits`].
    ///
    /// Strict: any malformed header, a missing mandatory header, a version
    /// other than 2.0, or a body shorter than Content-Length is an error.
    /// Without Content-Length, the body is the rest of the input (RFC 3261
    /// §18.3 allows this on datagram transports); bytes beyond
    /// Content-Length are ignored.
    pub fn parse(input: impl Into<Bytes>) -> Result<SipMessage, ParseError> {
        Self::parse_with(input.into(), &Limits::default())
    }

    /// [`SipMessage::parse`] with explicit limits.
    pub fn parse_with(input: Bytes, limits: &Limits) -> Result<SipMessage, ParseError> {
        // Strict parsing returns the first error, so `errors` stays empty.
        let mut errors = Vec::new();
        let msg = parse_message(input, limits, true, &mut errors)?;
        debug_assert!(errors.is_empty());
        validate(&msg)?;
        Ok(msg)
    }

    /// Parses as far as the grammar allows: malformed headers are kept as
    /// [`Header::Other`] and reported beside the message, so that a server can
    /// still answer 400 (or 505) using Via, From, To, Call-ID and CSeq.
    /// Fails only when the start line or the framing cannot be read.
    pub fn parse_lenient(input: Bytes, limits: &Limits) -> Result<(SipMessage, Vec<ParseError>), ParseError> {
        let mut errors = Vec::new();
        let msg = parse_message(input, limits, false, &mut errors)?;
        if let Err(e) = validate(&msg) {
            errors.push(e);
        }
        Ok((msg, errors))
    }

    /// The headers.
    pub fn headers(&self) -> &Headers {
        match self {
            SipMessage::Request(r) => &r.headers,
            SipMessage::Response(r) => &r.headers,
        }
    }

    /// The headers, mutably.
    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            SipMessage::Request(r) => &mut r.headers,
            SipMessage::Response(r) => &mut r.headers,
        }
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        match self {
            SipMessage::Request(r) => &r.body,
            SipMessage::Response(r) => &r.body,
        }
    }

    /// Prints canonically: `Name: value` lines with canonical names, one line
    /// per list element for address lists, CRLF line ends, and
    /// Content-Length set from the body.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            SipMessage::Request(r) => r.write(out),
            SipMessage::Response(r) => r.write(out),
        }
    }

    /// The printed bytes.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            SipMessage::Request(r) => r.to_bytes(),
            SipMessage::Response(r) => r.to_bytes(),
        }
    }
}

impl fmt::Display for SipMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.to_bytes();
        f.write_str(&String::from_utf8_lossy(&b))
    }
}

/// Checks rules that span headers: mandatory headers (RFC 3261 §8.1.1),
/// single-valued headers, CSeq method, version.
fn validate(msg: &SipMessage) -> Result<(), ParseError> {
    let h = msg.headers();
    let (version, method) = match msg {
        SipMessage::Request(r) => (r.version, Some(&r.method)),
        SipMessage::Response(r) => (r.version, None),
    };
    if version != Version::SIP_2_0 {
        return Err(ParseError::new(ErrorKind::UnsupportedVersion, 0));
    }
    let missing = |n: HeaderName| ParseError::in_header(ErrorKind::MissingHeader, 0, n.as_str());
    // One pass: the mandatory headers are present, and single-valued ones
    // do not repeat with different values.
    let mut via = false;
    let mut cseq: Option<&CSeq> = None;
    let mut seen: [Option<&Header>; 6] = [None; 6];
    for hdr in h {
        let slot = match hdr {
            Header::Via(_) => {
                via = true;
                continue;
            }
            Header::From(_) => 0,
            Header::To(_) => 1,
            Header::CallId(_) => 2,
            Header::CSeq(c) => {
                cseq.get_or_insert(c);
                3
            }
            Header::MaxForwards(_) => 4,
            Header::ContentLength(_) => 5,
            _ => continue,
        };
        match seen[slot] {
            None => seen[slot] = Some(hdr),
            Some(prev) if prev == hdr => {}
            Some(_) => {
                return Err(ParseError::in_header(
                    ErrorKind::DuplicateHeader,
                    0,
                    hdr.name().map(HeaderName::as_str).unwrap_or(""),
                ));
            }
        }
    }
    if !via {
        return Err(missing(HeaderName::Via));
    }
    if seen[0].is_none() {
        return Err(missing(HeaderName::From));
    }
    if seen[1].is_none() {
        return Err(missing(HeaderName::To));
    }
    let cseq = cseq.ok_or_else(|| missing(HeaderName::CSeq))?;
    if seen[2].is_none() {
        return Err(missing(HeaderName::CallId));
    }
    if let Some(m) = method {
        if *m != cseq.method && *m != Method::Ack && *m != Method::Cancel {
            return Err(ParseError::in_header(ErrorKind::CSeqMethodMismatch, 0, "CSeq"));
        }
        if (*m == Method::Ack || *m == Method::Cancel) && cseq.method != *m && cseq.method != Method::Invite {
            return Err(ParseError::in_header(ErrorKind::CSeqMethodMismatch, 0, "CSeq"));
        }
    }
    Ok(())
}

/// Finds the end of the header section: returns (head_len, body_start).
/// Accepts CRLF CRLF, and bare LF LF for lenient peers.
pub(crate) fn find_head_end(b: &[u8]) -> Option<(usize, usize)> {
    // Each LF followed by CRLF or LF ends the head; memchr finds the LFs.
    let mut i = 0;
    while let Some(p) = memchr::memchr(b'\n', &b[i..]) {
        let lf = i + p;
        match b.get(lf + 1) {
            Some(b'\r') if b.get(lf + 2) == Some(&b'\n') => return Some((lf + 1, lf + 3)),
            Some(b'\n') => return Some((lf + 1, lf + 2)),
            _ => {}
        }
        i = lf + 1;
    }
    None
}

fn parse_version(s: &str) -> Option<Version> {
    if s == "SIP/2.0" {
        return Some(Version::SIP_2_0);
    }
    let rest = s
        .strip_prefix("SIP/")
        .or_else(|| if s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("SIP/")) { s.get(4..) } else { None })?;
    let (a, b) = rest.split_once('.')?;
    if a.is_empty() || b.is_empty() || !a.bytes().all(|c| c.is_ascii_digit()) || !b.bytes().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    Some(Version { major: a.parse().ok()?, minor: b.parse().ok()? })
}

/// Messages up to this size (after leading CRLFs) that are valid UTF-8
/// throughout are validated in one pass and their header section is found
/// by the line loop itself; larger ones (or ones with a binary body) find
/// the end of the header section first and validate only that.
const WHOLE_MAX: usize = 8 * 1024;

/// The framing errors of [`parse_message`]'s slow path, in its order: no end
/// of the header section, or a header section over the limit. `None` when
/// the framing is fine.
fn frame_error(input: &[u8], lead: usize, limits: &Limits) -> Option<ParseError> {
    match find_head_end(&input[lead..]) {
        Some((h, _)) if h > limits.max_header_bytes => {
            Some(ParseError::new(ErrorKind::HeaderSectionTooLarge, lead + limits.max_header_bytes))
        }
        Some(_) => None,
        None if input.len() - lead > limits.max_header_bytes => {
            Some(ParseError::new(ErrorKind::HeaderSectionTooLarge, input.len()))
        }
        None => Some(ParseError::new(ErrorKind::Incomplete, input.len())),
    }
}

/// The slow path's first step: the header section found by its blank line,
/// checked against the limits and taken as text. Returns it, where the body
/// starts, and the input.
fn split_head(
    input: Bytes,
    lead: usize,
    limits: &Limits,
) -> Result<(ByteString, Option<usize>, Option<Bytes>), ParseError> {
    let (head_len, body_start) = match find_head_end(&input[lead..]) {
        Some((h, b)) => (lead + h, lead + b),
        None => {
            if input.len() - lead > limits.max_header_bytes {
                return Err(ParseError::new(ErrorKind::HeaderSectionTooLarge, input.len()));
            }
            return Err(ParseError::new(ErrorKind::Incomplete, input.len()));
        }
    };
    if head_len - lead > limits.max_header_bytes {
        return Err(ParseError::new(ErrorKind::HeaderSectionTooLarge, lead + limits.max_header_bytes));
    }
    match ByteString::try_from(input.slice(lead..head_len)) {
        Ok(h) => Ok((h, Some(body_start), Some(input))),
        Err(_) => {
            let off = std::str::from_utf8(&input[lead..head_len]).err().map(|e| e.valid_up_to()).unwrap_or(0);
            Err(ParseError::new(ErrorKind::InvalidUtf8, lead + off))
        }
    }
}

#[inline(always)]
fn parse_message(
    input: Bytes,
    limits: &Limits,
    strict: bool,
    errors: &mut Vec<ParseError>,
) -> Result<SipMessage, ParseError> {
    // RFC 3261 §7.5: ignore CRLFs before the start line.
    let lead = input.iter().take_while(|&&c| c == b'\r' || c == b'\n').count();
    if lead == input.len() {
        return Err(ParseError::new(ErrorKind::Empty, 0));
    }
    // The fast path keeps the whole input as the source of every string
    // (and of the body). When there is no CRLF to skip, the input itself is
    // moved there rather than sliced: a datagram that nothing else holds
    // then stays unshared (no reference count set up on the first slice, no
    // atomic updates) and is freed with the last string that points into it.
    // `kept`: the input, when it did not become the source.
    let (head, known, kept) = if lead == 0 && input.len() <= WHOLE_MAX {
        match ByteString::from_utf8_bytes(input) {
            Ok(src) => (src, None, None),
            Err(input) => split_head(input, lead, limits)?,
        }
    } else if input.len() - lead <= WHOLE_MAX
        && let Ok(src) = ByteString::try_from(input.slice(lead..))
    {
        (src, None, Some(input))
    } else {
        split_head(input, lead, limits)?
    };
    // The whole input, wherever it is now.
    let raw: &[u8] = kept.as_deref().unwrap_or(head.as_bytes());
    let body_of = |range: std::ops::Range<usize>| match &kept {
        Some(input) => input.slice(range),
        None => head.slice_bytes(range),
    };
    // On the fast path, framing errors keep their precedence over the
    // errors of the lines.
    let fail = |e: ParseError| match known {
        Some(_) => e,
        None => frame_error(raw, lead, limits).unwrap_or(e),
    };

    // Start line: status line or request line. Read before the headers so
    // that an unreadable start line is reported first, in strict and lenient
    // parsing alike.
    let hs: &str = &head;
    let sl_end = find_u8(hs.as_bytes(), b'\n').unwrap_or(hs.len());
    let start_line = hs[..sl_end].strip_suffix('\r').unwrap_or(&hs[..sl_end]);
    let mut msg = parse_start_line(&head, start_line, lead).map_err(fail)?;
    let headers = match &mut msg {
        SipMessage::Request(r) => r.headers.as_mut_vec(),
        SipMessage::Response(r) => r.headers.as_mut_vec(),
    };
    let blank = parse_lines(&head, sl_end + 1, lead, limits, strict, errors, headers).map_err(fail)?;
    let body_start = match (known, blank) {
        (Some(body_start), _) => body_start,
        (None, None) => {
            return Err(
                frame_error(raw, lead, limits).unwrap_or_else(|| ParseError::new(ErrorKind::Incomplete, raw.len()))
            );
        }
        (None, Some(blank)) => {
            if blank > limits.max_header_bytes {
                return Err(ParseError::new(ErrorKind::HeaderSectionTooLarge, lead + limits.max_header_bytes));
            }
            let crlf = if hs.as_bytes()[blank] == b'\n' { 1 } else { 2 };
            lead + blank + crlf
        }
    };

    // Body.
    let avail = raw.len() - body_start;
    let body = match msg.headers().content_length() {
        Some(n) => {
            let n = n as usize;
            if n > limits.max_body_bytes {
                return Err(ParseError::in_header(ErrorKind::BodyTooLarge, body_start, "Content-Length"));
            }
            if n > avail {
                return Err(ParseError::in_header(ErrorKind::BodyTruncated, raw.len(), "Content-Length"));
            }
            body_of(body_start..body_start + n)
        }
        None => {
            if avail > limits.max_body_bytes {
                return Err(ParseError::new(ErrorKind::BodyTooLarge, body_start));
            }
            body_of(body_start..raw.len())
        }
    };
    match &mut msg {
        SipMessage::Request(r) => r.body = body,
        SipMessage::Response(r) => r.body = body,
    }
    Ok(msg)
}

/// Parses the header lines of `head` (which starts at offset `lead` of the
/// input) from `pos` up to a blank line or the end of `head`, pushing them
/// to `headers`. Returns the offset of the blank line in `head`, if one was
/// seen.
fn parse_lines(
    head: &ByteString,
    mut pos: usize,
    lead: usize,
    limits: &Limits,
    strict: bool,
    errors: &mut Vec<ParseError>,
    headers: &mut Vec<Header>,
) -> Result<Option<usize>, ParseError> {
    let hs: &str = head;
    let hb = hs.as_bytes();
    let next_lf = |from: usize| memchr::memchr(b'\n', &hb[from..]).map_or(hb.len(), |e| from + e);
    // Where a line ending at its LF `lf` ends without its CR.
    let before_cr = |from: usize, lf: usize| if lf > from && hb[lf - 1] == b'\r' { lf - 1 } else { lf };
    let lws = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');

    // Header lines, with folding: each line is parsed as soon as its
    // continuation lines (starting with white space) are gathered. Lines
    // are cut as bytes (at ASCII bytes, so at character boundaries); only
    // the name and the value become `str`s.
    let mut count = 0usize;
    while pos < hb.len() {
        let end = next_lf(pos);
        if end == hb.len() {
            // An unterminated line (only with a whole-input `head`): there is
            // no blank line ahead.
            break;
        }
        let mut line_end = before_cr(pos, end);
        if line_end == pos {
            return Ok(Some(pos));
        }
        if matches!(hb[pos], b' ' | b'\t') {
            // A continuation with no header before it.
            return Err(ParseError::new(ErrorKind::InvalidHeaderName, lead + pos));
        }
        count += 1;
        if count > limits.max_headers {
            return Err(ParseError::new(ErrorKind::TooManyHeaders, lead + pos));
        }
        let line_start = pos;
        let mut folded = false;
        pos = end + 1;
        while pos < hb.len() && matches!(hb[pos], b' ' | b'\t') {
            let e = next_lf(pos);
            line_end = before_cr(pos, e);
            folded = true;
            pos = e + 1;
        }
        let off = lead + line_start;
        // Name: a token, optional white space, then the colon. The colon is
        // found first; a name that is not a known one is then checked to
        // be a token (a known one matched a token exactly).
        let tb = &hb[line_start..line_end];
        let Some(colon) = find_u8(tb, b':') else {
            return Err(ParseError::new(ErrorKind::InvalidHeaderName, off));
        };
        let mut n = colon;
        while n > 0 && matches!(tb[n - 1], b' ' | b'\t') {
            n -= 1;
        }
        let name = &hs[line_start..line_start + n];
        let known = HeaderName::lookup(name);
        if known.is_none() && (n == 0 || !tb[..n].iter().all(|&c| is_token_byte(c))) {
            return Err(ParseError::new(ErrorKind::InvalidHeaderName, off));
        }
        let (mut vs, mut ve) = (colon + 1, tb.len());
        while vs < ve && lws(tb[vs]) {
            vs += 1;
        }
        while ve > vs && lws(tb[ve - 1]) {
            ve -= 1;
        }
        let value_raw = &hs[line_start + vs..line_start + ve];
        let value_off = off + vs;
        // Typed values are parsed straight from the header section; only
        // folded values get a buffer of their own.
        let folded: Option<ByteString> = folded.then(|| ByteString::from(unfold(value_raw)));
        let (vsrc, vstr): (&ByteString, &str) = match &folded {
            Some(f) => (f, f),
            None => (head, value_raw),
        };
        let value = || sub(vsrc, vstr);
        match known {
            Some(hn) => {
                if let Err(at) = parse_value(hn, vsrc, vstr, headers) {
                    let e = ParseError::in_header(
                        ErrorKind::InvalidHeaderValue,
                        value_off + at.min(value_raw.len()),
                        hn.as_str(),
                    );
                    if strict {
                        return Err(e);
                    }
                    errors.push(e);
                    headers.push(Header::Other(RawHeader { name: sub(head, name), value: value() }));
                }
            }
            None => headers.push(Header::Other(RawHeader { name: sub(head, name), value: value() })),
        }
    }
    Ok(None)
}

/// Parses a status line or a request line (`lead` is its offset in the input).
#[inline(always)]
fn parse_start_line(head: &ByteString, start_line: &str, lead: usize) -> Result<SipMessage, ParseError> {
    if start_line.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("SIP/")) {
        // `SIP-Version SP Status-Code SP Reason-Phrase`: split at the first
        // two spaces (the reason may hold more).
        let (v, rest) = match find_u8(start_line.as_bytes(), b' ') {
            Some(i) => (&start_line[..i], &start_line[i + 1..]),
            None => (start_line, ""),
        };
        let (code, reason) = match find_u8(rest.as_bytes(), b' ') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let version = parse_version(v).ok_or(ParseError::new(ErrorKind::InvalidVersion, lead))?;
        let code_err = ParseError::new(ErrorKind::InvalidStatusCode, lead + v.len() + 1);
        if code.len() != 3 || !code.bytes().all(|c| c.is_ascii_digit()) {
            return Err(code_err);
        }
        let status: u16 = code.parse().map_err(|_| code_err.clone())?;
        if !(100..=699).contains(&status) {
            return Err(code_err);
        }
        Ok(SipMessage::Response(Response {
            version,
            status,
            reason: sub(head, reason),
            headers: Headers::with_room(),
            body: Bytes::new(),
        }))
    } else {
        // Method SP Request-URI SP SIP-Version, single spaces.
        let b = start_line.as_bytes();
        let (Some(sp1), Some(sp2)) = (b.iter().position(|&c| c == b' '), b.iter().rposition(|&c| c == b' ')) else {
            return Err(ParseError::new(ErrorKind::InvalidStartLine, lead));
        };
        if sp1 >= sp2 || b[sp1 + 1..sp2].contains(&b' ') {
            return Err(ParseError::new(ErrorKind::InvalidStartLine, lead));
        }
        let (m, u, v) = (&start_line[..sp1], &start_line[sp1 + 1..sp2], &start_line[sp2 + 1..]);
        if m.is_empty() || !m.bytes().all(is_token_byte) {
            return Err(ParseError::new(ErrorKind::InvalidMethod, lead));
        }
        let uri_off = lead + m.len() + 1;
        let uri = parse_uri(head, u, true).map_err(|k| ParseError::new(k, uri_off))?;
        // RFC 3261 §19.1.1 (table): URI headers are not allowed in a
        // Request-URI (RFC 4475 §3.1.2.11 escruri).
        if let Uri::Sip(s) = &uri
            && !s.headers().is_empty()
        {
            let q = u.find('?').unwrap_or(0);
            return Err(ParseError::new(ErrorKind::InvalidUri, uri_off + q));
        }
        let version = parse_version(v).ok_or(ParseError::new(ErrorKind::InvalidVersion, uri_off + u.len() + 1))?;
        Ok(SipMessage::Request(Request {
            method: Method::from_src(head, m),
            uri,
            version,
            headers: Headers::with_room(),
            body: Bytes::new(),
        }))
    }
}

/// Replaces each CRLF/LF followed by white space with a single space.
fn unfold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.split('\n').peekable();
    let mut first = true;
    while let Some(part) = it.next() {
        let part = part.strip_suffix('\r').unwrap_or(part);
        if first {
            out.push_str(part.trim_end_matches(is_ws));
            first = false;
        } else {
            let t = part.trim_matches(is_ws);
            if !t.is_empty() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(t);
            }
        }
        let _ = it.peek();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "MESSAGE sip:bob@example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-a-long-branch-value-here\r\n\
        Max-Forwards: 70\r\nTo: <sip:bob@example.com>\r\n\
        From: <sip:alice@example.com>;tag=1928\r\nCall-ID: a84b4c76e66710\r\n\
        CSeq: 1 MESSAGE\r\nContent-Type: application/octet-stream\r\n";

    fn with_body(lead: &str, body: &[u8]) -> Bytes {
        let mut v = lead.as_bytes().to_vec();
        v.extend_from_slice(HEAD.as_bytes());
        v.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        v.extend_from_slice(body);
        // A buffer nothing else holds, as a received datagram is.
        Bytes::from(v)
    }

    #[test]
    fn every_source_path_gives_the_same_message() {
        // The input moved whole into the source (no leading CRLF, all text),
        // sliced after leading CRLFs, and split at the blank line (a body
        // that is not UTF-8): the same headers, the same body bytes.
        let text: &[u8] = b"hello";
        let binary: &[u8] = b"\xff\x00\xfe";
        let moved = SipMessage::parse_with(with_body("", text), &Limits::default()).unwrap();
        let sliced = SipMessage::parse_with(with_body("\r\n\r\n", text), &Limits::default()).unwrap();
        let split = SipMessage::parse_with(with_body("", binary), &Limits::default()).unwrap();
        let split_lead = SipMessage::parse_with(with_body("\r\n", binary), &Limits::default()).unwrap();
        assert_eq!(moved, sliced);
        assert_eq!(moved.body().as_ref(), text);
        let but_length = |m: &SipMessage| -> Vec<Header> {
            m.headers().iter().filter(|h| !matches!(h, Header::ContentLength(_))).cloned().collect()
        };
        assert_eq!(but_length(&split), but_length(&moved));
        assert_eq!(split.body().as_ref(), binary);
        assert_eq!(split_lead, split);
        let branch = moved.headers().via().and_then(|v| v.branch()).map(str::to_owned);
        assert_eq!(branch.as_deref(), Some("z9hG4bK-a-long-branch-value-here"));
        // A truncated body is reported at the input's end on both paths.
        for lead in ["", "\r\n"] {
            let mut cut = with_body(lead, text).to_vec();
            cut.truncate(cut.len() - 2);
            let e = SipMessage::parse_with(Bytes::from(cut.clone()), &Limits::default()).unwrap_err();
            assert_eq!((e.kind, e.offset), (ErrorKind::BodyTruncated, cut.len()));
        }
    }

    #[test]
    fn a_printed_response_is_the_built_one_printed() {
        // Two Vias (one stamped), a To without a tag, headers that are not
        // copied and a body: the same bytes as building the response from
        // copies of the headers and printing it.
        let raw = "INVITE sip:bob@example.com SIP/2.0\r\n\
            Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport=5060;received=192.0.2.1\r\n\
            Max-Forwards: 70\r\nVia: SIP/2.0/TCP proxy.example.com;branch=z9hG4bK0\r\n\
            To: \"Bob\" <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=1928\r\n\
            Call-ID: a84b4c76e66710@example.com\r\nCSeq: 314159 INVITE\r\n\
            Contact: <sip:alice@192.0.2.1>\r\nContent-Type: application/sdp\r\n\
            Content-Length: 4\r\n\r\nv=0\n";
        let SipMessage::Request(req) = SipMessage::parse(raw.as_bytes().to_vec()).unwrap() else { panic!("a request") };
        for status in [100, 180, 487] {
            for tag in [None, Some("b7")] {
                let mut built = Response::new(status);
                for h in req.headers.iter() {
                    match h {
                        Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => {
                            built.headers.push(h.clone())
                        }
                        Header::To(to) => {
                            let mut to = to.clone();
                            if let Some(t) = tag {
                                to.params.set("tag", Some(t));
                            }
                            built.headers.push(Header::To(to));
                        }
                        _ => {}
                    }
                }
                built.headers.push(Header::Server("sipact/0.1.0".into()));
                let printed = req.print_response(status, tag, |w| w.text(HeaderName::Server, "sipact/0.1.0"));
                assert_eq!(printed, built.to_bytes(), "{status} {tag:?}");
            }
        }
        // A To that has a tag keeps it.
        let tagged = String::from_utf8(req.print_response(200, Some("b7"), |_| {}).to_vec()).unwrap();
        let retagged =
            tagged.replace("To: \"Bob\" <sip:bob@example.com>;tag=b7", "To: \"Bob\" <sip:bob@example.com>;tag=zz");
        let SipMessage::Request(mut in_dialog) = SipMessage::parse(
            raw.replace("To: \"Bob\" <sip:bob@example.com>", "To: \"Bob\" <sip:bob@example.com>;tag=zz").into_bytes(),
        )
        .unwrap() else {
            panic!("a request")
        };
        assert_eq!(String::from_utf8(in_dialog.print_response(200, Some("b7"), |_| {}).to_vec()).unwrap(), retagged);
        in_dialog.headers = Headers::new();
        assert_eq!(
            in_dialog.print_response(200, None, |_| {}).as_ref(),
            b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"
        );
        let text = String::from_utf8(req.print_response(100, None, |_| {}).to_vec()).unwrap();
        assert!(text.starts_with("SIP/2.0 100 Trying\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport=5060;received=192.0.2.1\r\n"), "{text}");
        assert!(text.ends_with("CSeq: 314159 INVITE\r\nContent-Length: 0\r\n\r\n"), "{text}");
        assert!(!text.contains("Contact") && !text.contains("Max-Forwards"), "{text}");
    }
}
