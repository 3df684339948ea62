//! Property: for generated messages, `parse(print(m)) == m`, and printing the
//! parsed message gives the same bytes again.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use sipact_message::{
    Auth, AuthParam, ByteString, Bytes, CSeq, Contact, DeltaParams, Header, Headers, Host, MediaType, Method, NameAddr,
    Param, Params, RAck, RawHeader, Request, Response, SipMessage, SipUri, TelUri, TokenParams, Uri, Version, Via,
    Warning,
};

fn bs(s: String) -> ByteString {
    ByteString::from(s)
}

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.!%*_+`'~-]{0,11}"
}

fn domain() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,8}(\\.[a-z][a-z0-9]{0,6}){0,3}"
}

fn host() -> impl Strategy<Value = Host> {
    prop_oneof![
        domain().prop_map(|d| Host::Domain(bs(d))),
        any::<u32>().prop_map(|a| Host::Ipv4(Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| Host::Ipv6(Ipv6Addr::from(a))),
    ]
}

fn params_named(name: BoxedStrategy<String>, value: BoxedStrategy<String>) -> impl Strategy<Value = Params> {
    prop::collection::vec((name, prop::option::of(value)), 0..4).prop_map(|v| {
        // Names are unique (ignoring case): repeated names make §19.1.4 equality ambiguous.
        let mut seen = std::collections::HashSet::new();
        Params(
            v.into_iter()
                .filter(|(n, _)| seen.insert(n.to_ascii_lowercase()))
                .map(|(n, v)| Param { name: bs(n), value: v.map(bs) })
                .collect(),
        )
    })
}

fn params(value: BoxedStrategy<String>) -> impl Strategy<Value = Params> {
    params_named(token().boxed(), value)
}

fn uri_params() -> impl Strategy<Value = Params> {
    params_named("[a-zA-Z0-9][a-zA-Z0-9_.!~*'()-]{0,7}".boxed(), uri_param_value())
}

fn uri_param_value() -> BoxedStrategy<String> {
    "[a-zA-Z0-9:/+$\\[\\]-]{1,10}".boxed()
}

fn header_param_value() -> BoxedStrategy<String> {
    prop_oneof![token(), "\"[a-zA-Z0-9 ,;:@<>=]{0,10}\"", "[0-9a-f:]{2,12}"].boxed()
}

fn sip_uri() -> impl Strategy<Value = SipUri> {
    (
        any::<bool>(),
        prop::option::of((
            "[a-zA-Z0-9_.!~*'()&=+$,;?/-]{1,10}|[a-z]{1,3}%40[a-z]{1,3}",
            prop::option::of("[a-z0-9&=+$,]{0,8}"),
        )),
        host(),
        prop::option::of(any::<u16>()),
        uri_params(),
        prop::collection::vec(("[a-zA-Z][a-zA-Z0-9]{0,6}", "[a-zA-Z0-9:/?+$-]{1,8}"), 0..3),
    )
        .prop_map(|(secure, userinfo, host, port, params, headers)| {
            let mut u = SipUri::new(host);
            u.secure = secure;
            u.user = userinfo.as_ref().map(|(u, _)| bs(u.clone()));
            u.port = port;
            u.params = params;
            u.set_password(userinfo.and_then(|(_, p)| p).map(bs));
            u.set_headers(Params(headers.into_iter().map(|(n, v)| Param::new(bs(n), bs(v))).collect()));
            u
        })
}

fn uri() -> impl Strategy<Value = Uri> {
    prop_oneof![
        4 => sip_uri().prop_map(Uri::Sip),
        1 => ("\\+[0-9]{1,3}(-[0-9]{2,4}){0,3}", uri_params())
            .prop_map(|(n, params)| Uri::Tel(TelUri { number: bs(n), params })),
        1 => "(urn|http|im):[a-z0-9./:]{1,12}".prop_map(|s| Uri::Other(bs(s))),
    ]
}

fn display() -> impl Strategy<Value = Option<ByteString>> {
    prop::option::of("[a-zA-Z0-9 \"\\\\<>;,:@éü]{0,12}".prop_map(bs))
}

fn name_addr() -> impl Strategy<Value = NameAddr> {
    (display(), uri(), params(header_param_value())).prop_map(|(display, uri, params)| NameAddr {
        display,
        uri,
        params,
    })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Invite),
        Just(Method::Ack),
        Just(Method::Bye),
        Just(Method::Cancel),
        Just(Method::Register),
        Just(Method::Options),
        Just(Method::Prack),
        Just(Method::Update),
        Just(Method::Info),
        Just(Method::Refer),
        Just(Method::Notify),
        Just(Method::Subscribe),
        Just(Method::Message),
        Just(Method::Publish),
        "X[A-Z]{1,8}".prop_map(|m| Method::Extension(bs(m))),
    ]
}

fn via() -> impl Strategy<Value = Via> {
    ("UDP|TCP|TLS|WS|WSS|SCTP", host(), prop::option::of(any::<u16>()), token(), params(header_param_value())).prop_map(
        |(t, host, port, branch, mut params)| {
            params.0.insert(0, Param::new("branch", bs(format!("z9hG4bK{branch}"))));
            Via {
                protocol: ByteString::from_static("SIP"),
                version: ByteString::from_static("2.0"),
                transport: bs(t),
                host,
                port,
                params,
            }
        },
    )
}

fn tokens() -> impl Strategy<Value = Vec<ByteString>> {
    prop::collection::vec(token().prop_map(bs), 0..4)
}

fn auth() -> impl Strategy<Value = Auth> {
    (
        "Digest|Basic|Bearer",
        prop::collection::vec(
            (
                token(),
                prop_oneof![token().prop_map(|t| (t, false)), "[a-zA-Z0-9 ,=\"\\\\:/]{0,12}".prop_map(|t| (t, true))],
            ),
            1..5,
        ),
    )
        .prop_map(|(scheme, ps)| Auth {
            scheme: bs(scheme.to_string()),
            params: ps.into_iter().map(|(n, (v, q))| AuthParam { name: bs(n), value: bs(v), quoted: q }).collect(),
        })
}

fn token_params() -> impl Strategy<Value = TokenParams> {
    (token(), params(header_param_value())).prop_map(|(v, params)| TokenParams { value: bs(v), params })
}

fn delta_params(comment: bool) -> impl Strategy<Value = DeltaParams> {
    (any::<u32>(), prop::option::of("\\([a-z ]{0,8}\\)"), params(header_param_value())).prop_map(
        move |(delta, c, params)| DeltaParams { delta, comment: if comment { c.map(bs) } else { None }, params },
    )
}

fn extra_header() -> impl Strategy<Value = Header> {
    prop_oneof![
        via().prop_map(Header::Via),
        name_addr().prop_map(|a| Header::Contact(Contact::Addr(a))),
        Just(Header::Contact(Contact::Any)),
        name_addr().prop_map(|mut a| {
            a.display = None;
            Header::Route(a)
        }),
        name_addr().prop_map(Header::RecordRoute),
        name_addr().prop_map(Header::ReferTo),
        name_addr().prop_map(Header::ReferredBy),
        name_addr().prop_map(Header::PAssertedIdentity),
        ("[a-z]{1,10}", "[a-z0-9.+-]{1,10}", params(header_param_value()))
            .prop_map(|(t, s, params)| Header::ContentType(MediaType { mtype: bs(t), subtype: bs(s), params })),
        token_params().prop_map(Header::ContentDisposition),
        tokens().prop_map(|v| Header::ContentEncoding(v.iter().collect())),
        tokens().prop_map(|v| Header::Require(v.iter().collect())),
        tokens().prop_map(|v| Header::ProxyRequire(v.iter().collect())),
        tokens().prop_map(|v| Header::Supported(v.iter().collect())),
        tokens().prop_map(|v| Header::Unsupported(v.iter().collect())),
        tokens().prop_map(|v| Header::AllowEvents(v.iter().collect())),
        prop::collection::vec(method(), 0..5).prop_map(|v| Header::Allow(v.into_iter().collect())),
        any::<u32>().prop_map(Header::Expires),
        any::<u32>().prop_map(Header::MinExpires),
        auth().prop_map(Header::WwwAuthenticate),
        auth().prop_map(Header::ProxyAuthenticate),
        auth().prop_map(Header::Authorization),
        auth().prop_map(Header::ProxyAuthorization),
        any::<u32>().prop_map(Header::RSeq),
        (any::<u32>(), any::<u32>(), method()).prop_map(|(rseq, cseq, method)| Header::RAck(RAck {
            rseq,
            cseq,
            method
        })),
        ("[a-zA-Z0-9.!%*_+`'~-]{1,10}(@[a-z0-9.]{1,8})?", params(header_param_value()))
            .prop_map(|(id, params)| Header::Replaces(TokenParams { value: bs(id), params })),
        token_params().prop_map(Header::Event),
        token_params().prop_map(Header::SubscriptionState),
        delta_params(false).prop_map(Header::SessionExpires),
        delta_params(false).prop_map(Header::MinSe),
        delta_params(true).prop_map(Header::RetryAfter),
        token_params().prop_map(Header::Reason),
        prop::collection::vec(token().prop_map(bs), 1..4).prop_map(Header::Privacy),
        "[a-zA-Z0-9/().]([a-zA-Z0-9/(). ]{0,20}[a-zA-Z0-9/().])?".prop_map(|s| Header::UserAgent(bs(s))),
        "[a-zA-Z0-9/().]([a-zA-Z0-9/(). ]{0,20}[a-zA-Z0-9/().])?".prop_map(|s| Header::Server(bs(s))),
        "[a-zA-Z0-9,;:]([a-zA-Z0-9 ,;:]{0,20}[a-zA-Z0-9])?".prop_map(|s| Header::Subject(bs(s))),
        (300u16..400, "[a-z0-9.:]{1,12}", "[a-zA-Z0-9 \"\\\\]{0,12}")
            .prop_map(|(code, agent, text)| Header::Warning(Warning { code, agent: bs(agent), text: bs(text) })),
        ("X-[A-Za-z0-9-]{1,10}", "([!-~]([ -~]{0,20}[!-~])?)?")
            .prop_map(|(name, value)| Header::Other(RawHeader { name: bs(name), value: bs(value) })),
    ]
}

fn core_headers(m: Method) -> impl Strategy<Value = Vec<Header>> {
    (via(), name_addr(), name_addr(), "[a-zA-Z0-9.!%*_+`'~()<>:\\\\\"/?{}-]{1,16}(@[a-z0-9.]{1,10})?", 0u32..(1 << 31))
        .prop_map(move |(v, f, t, id, seq)| {
            vec![
                Header::Via(v),
                Header::From(f),
                Header::To(t),
                Header::CallId(bs(id)),
                Header::CSeq(CSeq { seq, method: m.clone() }),
            ]
        })
}

fn message() -> impl Strategy<Value = SipMessage> {
    (
        any::<bool>(),
        method(),
        uri(),
        100u16..700,
        "[a-zA-Z0-9 .,-]{0,20}",
        prop::collection::vec(extra_header(), 0..12),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_flat_map(|(is_req, m, uri, status, reason, extra, body)| {
            core_headers(m.clone()).prop_map(move |core| {
                let mut headers: Vec<Header> = core;
                headers.extend(extra.iter().cloned());
                headers.push(Header::ContentLength(body.len() as u32));
                let headers = Headers::from_vec(headers);
                let body = Bytes::from(body.clone());
                if is_req {
                    // RFC 3261 §19.1.1: no URI headers in a Request-URI.
                    let mut uri = uri.clone();
                    if let Uri::Sip(s) = &mut uri {
                        s.set_headers(Params::new());
                    }
                    SipMessage::Request(Request { method: m.clone(), uri, version: Version::SIP_2_0, headers, body })
                } else {
                    SipMessage::Response(Response {
                        version: Version::SIP_2_0,
                        status,
                        reason: bs(reason.trim().to_string()),
                        headers,
                        body,
                    })
                }
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parse_print_round_trip(m in message()) {
        let printed = m.to_bytes();
        let parsed = SipMessage::parse(printed.clone());
        prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed, String::from_utf8_lossy(&printed));
        let parsed = parsed.unwrap();
        prop_assert_eq!(&parsed, &m, "\n{}", String::from_utf8_lossy(&printed));
        prop_assert_eq!(parsed.to_bytes(), printed);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = SipMessage::parse(data);
    }
}

/// Found by the parse fuzz target: a start line with a multi-byte character
/// across byte 4 made the status-line check slice inside the character.
#[test]
fn fuzz_regression_multibyte_start_line() {
    let input: &[u8] = b">\x01b\xc3\xb1\xd1\xba> R\n\r\n&";
    assert!(SipMessage::parse(input.to_vec()).is_err());
    assert!(SipMessage::parse(b"SIP\xc3\xb1 200 OK\r\n\r\n".to_vec()).is_err());
}
