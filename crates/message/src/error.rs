//! Parse and framing errors.

use std::fmt;

/// What went wrong while parsing or framing a SIP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input ended before the header section was complete.
    Incomplete,
    /// The input was empty (or held only keep-alive CRLFs).
    Empty,
    /// The header section is not valid UTF-8.
    InvalidUtf8,
    /// The start line is neither a request line nor a status line.
    InvalidStartLine,
    /// The request method is not a token.
    InvalidMethod,
    /// The Request-URI (or a URI inside a header) does not follow the grammar.
    InvalidUri,
    /// The SIP version is not of the form `SIP/x.y`.
    InvalidVersion,
    /// The SIP version is well formed but not `SIP/2.0` (answer 505).
    UnsupportedVersion,
    /// The status code is not three digits in 100..=699.
    InvalidStatusCode,
    /// A header line has no colon or its name is not a token.
    InvalidHeaderName,
    /// A header value does not follow its grammar.
    InvalidHeaderValue,
    /// A header that every request or response must carry is missing.
    MissingHeader,
    /// A header that may appear only once appears with different values.
    DuplicateHeader,
    /// The CSeq method differs from the request method.
    CSeqMethodMismatch,
    /// Content-Length is missing where it is mandatory (stream transports).
    MissingContentLength,
    /// The body is shorter than Content-Length says.
    BodyTruncated,
    /// The header section exceeds [`Limits::max_header_bytes`](crate::Limits).
    HeaderSectionTooLarge,
    /// More header lines than [`Limits::max_headers`](crate::Limits).
    TooManyHeaders,
    /// Content-Length exceeds [`Limits::max_body_bytes`](crate::Limits).
    BodyTooLarge,
}

impl ErrorKind {
    /// A short English description, suitable as a 400 reason phrase.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Incomplete => "incomplete message",
            ErrorKind::Empty => "empty message",
            ErrorKind::InvalidUtf8 => "header section is not UTF-8",
            ErrorKind::InvalidStartLine => "invalid start line",
            ErrorKind::InvalidMethod => "invalid method",
            ErrorKind::InvalidUri => "invalid URI",
            ErrorKind::InvalidVersion => "invalid SIP version",
            ErrorKind::UnsupportedVersion => "unsupported SIP version",
            ErrorKind::InvalidStatusCode => "invalid status code",
            ErrorKind::InvalidHeaderName => "invalid header line",
            ErrorKind::InvalidHeaderValue => "invalid header value",
            ErrorKind::MissingHeader => "missing mandatory header",
            ErrorKind::DuplicateHeader => "conflicting duplicate header",
            ErrorKind::CSeqMethodMismatch => "CSeq method does not match request method",
            ErrorKind::MissingContentLength => "missing Content-Length",
            ErrorKind::BodyTruncated => "body shorter than Content-Length",
            ErrorKind::HeaderSectionTooLarge => "header section too large",
            ErrorKind::TooManyHeaders => "too many headers",
            ErrorKind::BodyTooLarge => "body too large",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parse error: what went wrong, the byte offset in the input where it was
/// found, and the header it concerns (canonical name), if any.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ParseError {
    /// The kind of error.
    pub kind: ErrorKind,
    /// Byte offset into the parsed input.
    pub offset: usize,
    /// The header concerned, by canonical name (e.g. `"Via"`).
    pub header: Option<&'static str>,
}

impl ParseError {
    /// An error of `kind` at `offset`, about no particular header.
    pub fn new(kind: ErrorKind, offset: usize) -> Self {
        ParseError { kind, offset, header: None }
    }

    /// An error of `kind` at `offset` about `header`.
    pub fn in_header(kind: ErrorKind, offset: usize, header: &'static str) -> Self {
        ParseError { kind, offset, header: Some(header) }
    }

    /// A reason phrase for a 400 response that names the problem,
    /// e.g. `Bad Request - invalid header value (Via)`.
    pub fn reason_phrase(&self) -> String {
        match self.header {
            Some(h) => format!("Bad Request - {} ({h})", self.kind),
            None => format!("Bad Request - {}", self.kind),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.header {
            Some(h) => write!(f, "{} in {h} at byte {}", self.kind, self.offset),
            None => write!(f, "{} at byte {}", self.kind, self.offset),
        }
    }
}
