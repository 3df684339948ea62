//! Splitting a byte stream (TCP, TLS, WebSocket) into SIP messages.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::{ErrorKind, ParseError};
use crate::message::{Limits, find_head_end};

/// What the framer cut from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// One complete message (header section and exactly Content-Length body
    /// bytes), ready for [`SipMessage::parse`](crate::SipMessage::parse).
    Message(Bytes),
    /// A double-CRLF keep-alive ping (RFC 5626 §3.5.1): answer with a pong.
    Ping,
    /// A single-CRLF keep-alive pong.
    Pong,
}

/// Accumulates stream bytes and yields frames. Content-Length is mandatory
/// on streams (RFC 3261 §18.3). After an error the stream has lost framing
/// and should be closed; further calls return the same error.
///
/// Keep-alives: on the side that accepted the connection (the default), a
/// CRLF at the end of the buffer waits for the rest of a possible
/// double-CRLF ping. On the side that opened it and sends pings
/// ([`StreamFramer::client`]), a lone CRLF is a pong at once.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: BytesMut,
    limits: Limits,
    failed: Option<ParseError>,
    consumed: usize,
    client: bool,
}

impl StreamFramer {
    /// A framer with default [`Limits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A framer with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        StreamFramer { limits, ..Self::default() }
    }

    /// A framer for a connection this side opened: it receives pongs.
    pub fn client(limits: Limits) -> Self {
        StreamFramer { limits, client: true, ..Self::default() }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next frame, `Ok(None)` when more bytes are needed.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Frame>, ParseError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.next_inner();
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    fn fail(&self, kind: ErrorKind, at: usize, header: Option<&'static str>) -> ParseError {
        ParseError { kind, offset: self.consumed + at, header }
    }

    fn next_inner(&mut self) -> Result<Option<Frame>, ParseError> {
        let b = &self.buf[..];
        if b.is_empty() {
            return Ok(None);
        }
        if b.starts_with(b"\r\n\r\n") {
            self.advance(4);
            return Ok(Some(Frame::Ping));
        }
        if b.starts_with(b"\r\n") {
            if (b.len() == 2 && self.client) || (b.len() > 2 && !b[2..].starts_with(b"\r")) {
                self.advance(2);
                return Ok(Some(Frame::Pong));
            }
            return Ok(None);
        }
        if b == b"\r" {
            return Ok(None);
        }
        let Some((_, body_start)) = find_head_end(b) else {
            if b.len() > self.limits.max_header_bytes {
                return Err(self.fail(ErrorKind::HeaderSectionTooLarge, self.limits.max_header_bytes, None));
            }
            return Ok(None);
        };
        if body_start > self.limits.max_header_bytes {
            return Err(self.fail(ErrorKind::HeaderSectionTooLarge, self.limits.max_header_bytes, None));
        }
        let len = match content_length(&b[..body_start], self.limits.max_headers) {
            Ok(Some(n)) => n,
            Ok(None) => return Err(self.fail(ErrorKind::MissingContentLength, 0, Some("Content-Length"))),
            Err((kind, at)) => return Err(self.fail(kind, at, Some("Content-Length"))),
        };
        if len > self.limits.max_body_bytes {
            return Err(self.fail(ErrorKind::BodyTooLarge, body_start, Some("Content-Length")));
        }
        if b.len() < body_start + len {
            return Ok(None);
        }
        let frame = self.buf.split_to(body_start + len).freeze();
        self.consumed += frame.len();
        Ok(Some(Frame::Message(frame)))
    }

    fn advance(&mut self, n: usize) {
        self.buf.advance(n);
        self.consumed += n;
    }
}

/// Finds Content-Length (or `l`) in a header section without a full parse.
/// Counts lines against `max_headers`.
fn content_length(head: &[u8], max_headers: usize) -> Result<Option<usize>, (ErrorKind, usize)> {
    let mut found: Option<usize> = None;
    let mut lines = 0usize;
    let mut pos = 0;
    for line in head.split(|&c| c == b'\n') {
        let start = pos;
        pos += line.len() + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line[0] == b' ' || line[0] == b'\t' {
            continue;
        }
        lines += 1;
        if lines > max_headers + 1 {
            return Err((ErrorKind::TooManyHeaders, start));
        }
        let Some(colon) = line.iter().position(|&c| c == b':') else { continue };
        let name = trim(&line[..colon]);
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            let v = trim(&line[colon + 1..]);
            if v.is_empty() || v.len() > 10 || !v.iter().all(u8::is_ascii_digit) {
                return Err((ErrorKind::InvalidHeaderValue, start));
            }
            let n: usize = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or((ErrorKind::InvalidHeaderValue, start))?;
            if found.is_some_and(|f| f != n) {
                return Err((ErrorKind::DuplicateHeader, start));
            }
            found = Some(n);
        }
    }
    Ok(found)
}

fn trim(s: &[u8]) -> &[u8] {
    let a = s.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(s.len());
    let b = s.iter().rposition(|c| !c.is_ascii_whitespace()).map(|p| p + 1).unwrap_or(a);
    &s[a..b.max(a)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] =
        b"OPTIONS sip:b@h SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 4\r\n\r\nbody";

    #[test]
    fn frames_byte_by_byte_with_keepalives() {
        let mut f = StreamFramer::new();
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(MSG);
        stream.extend_from_slice(MSG);
        stream.extend_from_slice(b"\r\n");
        let mut frames = Vec::new();
        for b in &stream {
            f.push(&[*b]);
            while let Some(fr) = f.next().unwrap() {
                frames.push(fr);
            }
        }
        assert_eq!(
            frames,
            vec![Frame::Ping, Frame::Message(Bytes::from_static(MSG)), Frame::Message(Bytes::from_static(MSG))]
        );
        // The trailing CRLF may be the first half of a ping: it waits.
        assert_eq!(f.buffered(), 2);
        f.push(b"\r\n");
        assert_eq!(f.next().unwrap(), Some(Frame::Ping));
        // CRLF then the start of a message: a pong.
        f.push(b"\r\nOPT");
        assert_eq!(f.next().unwrap(), Some(Frame::Pong));
        assert_eq!(f.next().unwrap(), None);
    }

    #[test]
    fn client_side_sees_pongs_at_once() {
        let mut f = StreamFramer::client(Limits::default());
        f.push(b"\r\n");
        assert_eq!(f.next().unwrap(), Some(Frame::Pong));
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn missing_length_is_an_error_and_sticks() {
        let mut f = StreamFramer::new();
        f.push(b"OPTIONS sip:b@h SIP/2.0\r\nVia: x\r\n\r\n");
        let e = f.next().unwrap_err();
        assert_eq!(e.kind, ErrorKind::MissingContentLength);
        assert_eq!(f.next().unwrap_err(), e);
    }

    #[test]
    fn limits() {
        let mut f = StreamFramer::with_limits(Limits { max_header_bytes: 64, max_headers: 2, max_body_bytes: 10 });
        f.push(&[b'a'; 65]);
        assert_eq!(f.next().unwrap_err().kind, ErrorKind::HeaderSectionTooLarge);
        let mut f = StreamFramer::with_limits(Limits { max_header_bytes: 1024, max_headers: 8, max_body_bytes: 10 });
        f.push(b"OPTIONS sip:b@h SIP/2.0\r\nl: 11\r\n\r\n");
        assert_eq!(f.next().unwrap_err().kind, ErrorKind::BodyTooLarge);
        let mut f = StreamFramer::with_limits(Limits { max_header_bytes: 1024, max_headers: 2, max_body_bytes: 10 });
        f.push(b"OPTIONS sip:b@h SIP/2.0\r\na: 1\r\nb: 1\r\nc: 1\r\nl: 0\r\n\r\n");
        assert_eq!(f.next().unwrap_err().kind, ErrorKind::TooManyHeaders);
    }
}
