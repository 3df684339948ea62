//! Printing a request as it is assembled, without building it.
//!
//! A request that is only ever sent (the ACK of a 2xx, for one) costs a
//! typed [`Request`](crate::Request) whose headers are clones of values the
//! sender already holds: built, moved, printed and dropped. [`print_request`]
//! takes those values by reference and writes the same bytes that building
//! the request and printing it would give.

use bytes::Bytes;

use crate::headers::{Header, HeaderName, NameAddr, Via};
use crate::message::{printed, write_request_line};
use crate::method::Method;
use crate::out::put;
use crate::text::{eq_ic, write_u32};
use crate::uri::Uri;

/// Prints `method uri SIP/2.0`, the headers `headers` writes, a
/// Content-Length for `body`, the blank line and `body`: what printing a
/// [`Request`](crate::Request) with those parts gives.
pub fn print_request(method: &Method, uri: &Uri, headers: impl FnOnce(&mut HeaderWriter<'_>), body: &[u8]) -> Bytes {
    printed(|out| {
        write_request_line(out, method, uri);
        headers(&mut HeaderWriter::new(out));
        put(out, b"Content-Length: ");
        write_u32(out, u32::try_from(body.len()).unwrap_or(u32::MAX));
        put(out, b"\r\n\r\n");
        put(out, body);
    })
}

/// Writes header lines in the order they are given (see [`print_request`]
/// and [`Request::print_response`](crate::Request::print_response)).
pub struct HeaderWriter<'a>(&'a mut Vec<u8>);

impl<'a> HeaderWriter<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        HeaderWriter(out)
    }

    /// `Name: value` with `value` printed as it is (a Server or User-Agent
    /// text, for one).
    pub fn text(&mut self, name: HeaderName, value: &str) {
        put(self.0, name.prefix().as_bytes());
        put(self.0, value.as_bytes());
        put(self.0, b"\r\n");
    }

    /// `h` as a message prints it. A Content-Length is left out: the
    /// printer writes the body's own.
    pub fn header(&mut self, h: &Header) {
        if !matches!(h, Header::ContentLength(_)) {
            h.write(self.0);
        }
    }

    /// An address header (`name` is From, To, Route...) holding `addr`, with
    /// its `tag` parameter set to `tag` when one is given: the value it has
    /// replaced in place, or `;tag=` appended, as [`Params::set`] does on a
    /// copy of `addr`.
    ///
    /// [`Params::set`]: crate::Params::set
    pub fn address(&mut self, name: HeaderName, addr: &NameAddr, tag: Option<&str>) {
        let out = &mut *self.0;
        put(out, name.prefix().as_bytes());
        let Some(tag) = tag else {
            addr.write(out);
            put(out, b"\r\n");
            return;
        };
        addr.write_bracketed(out);
        let mut set = false;
        for p in addr.params.iter() {
            out.push(b';');
            put(out, p.name.as_bytes());
            if eq_ic(&p.name, "tag") && !set {
                set = true;
                out.push(b'=');
                put(out, tag.as_bytes());
            } else if let Some(v) = &p.value {
                out.push(b'=');
                put(out, v.as_bytes());
            }
        }
        if !set {
            put(out, b";tag=");
            put(out, tag.as_bytes());
        }
        put(out, b"\r\n");
    }

    /// `Via: ` and `via`.
    pub fn via(&mut self, via: &Via) {
        put(self.0, HeaderName::Via.prefix().as_bytes());
        via.write(self.0);
        put(self.0, b"\r\n");
    }

    /// `Call-ID: id`.
    pub fn call_id(&mut self, id: &str) {
        put(self.0, HeaderName::CallId.prefix().as_bytes());
        put(self.0, id.as_bytes());
        put(self.0, b"\r\n");
    }

    /// `CSeq: seq METHOD`.
    pub fn cseq(&mut self, seq: u32, method: &Method) {
        put(self.0, HeaderName::CSeq.prefix().as_bytes());
        write_u32(self.0, seq);
        self.0.push(b' ');
        put(self.0, method.as_str().as_bytes());
        put(self.0, b"\r\n");
    }

    /// `Max-Forwards: n`.
    pub fn max_forwards(&mut self, n: u32) {
        put(self.0, HeaderName::MaxForwards.prefix().as_bytes());
        write_u32(self.0, n);
        put(self.0, b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Host;
    use crate::headers::CSeq;
    use crate::message::Request;

    fn addr(text: &str) -> NameAddr {
        let raw = format!(
            "OPTIONS sip:x@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: {text}\r\n\
             To: <sip:y@example.com>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        let crate::SipMessage::Request(r) = crate::SipMessage::parse(raw.into_bytes()).unwrap() else {
            panic!("a request")
        };
        r.headers.from().unwrap().clone()
    }

    #[test]
    fn printing_as_assembled_gives_the_built_request() {
        // Addresses without a tag, with one (replaced in place, whatever its
        // case), with two (the first replaced) and with other parameters; a
        // tag given or not; a route; a body.
        let addrs = [
            "<sip:alice@192.0.2.1:5060>",
            "\"Alice A.\" <sip:alice@example.com;transport=tcp>;x=1",
            "<sip:alice@example.com>;TAG=old;y",
            "<sip:a@example.com>;tag=1;tag=2",
        ];
        let uri = Uri::parse("sip:bob@192.0.2.2:5060").unwrap();
        let route = addr("<sip:proxy.example.com;lr>");
        let mut via = Via::new("UDP", Host::Ipv4([127, 0, 0, 1].into()), Some(5060), "z9hG4bKabc");
        via.params.set("rport", None);
        for a in addrs {
            let a = addr(a);
            for tag in [None, Some("t0"), Some("")] {
                for body in [&b""[..], b"v=0\r\n"] {
                    let mut tagged = a.clone();
                    if let Some(t) = tag {
                        tagged.params.set("tag", Some(t));
                    }
                    let mut built = Request::new(Method::Ack, uri.clone());
                    built.headers.push(Header::Via(via.clone()));
                    built.headers.push(Header::MaxForwards(70));
                    built.headers.push(Header::Route(route.clone()));
                    built.headers.push(Header::From(tagged.clone()));
                    built.headers.push(Header::To(tagged));
                    built.headers.push(Header::CallId("a84b4c76e66710@example.com".into()));
                    built.headers.push(Header::CSeq(CSeq { seq: 7, method: Method::Ack }));
                    built.headers.push(Header::ContentLength(99));
                    built.body = Bytes::copy_from_slice(body);
                    let printed = print_request(
                        &Method::Ack,
                        &uri,
                        |w| {
                            w.via(&via);
                            w.max_forwards(70);
                            w.address(HeaderName::Route, &route, None);
                            w.address(HeaderName::From, &a, tag);
                            w.address(HeaderName::To, &a, tag);
                            w.call_id("a84b4c76e66710@example.com");
                            w.cseq(7, &Method::Ack);
                            w.header(&Header::ContentLength(99));
                        },
                        body,
                    );
                    assert_eq!(printed, built.to_bytes(), "{a:?} {tag:?}");
                }
            }
        }
    }
}
