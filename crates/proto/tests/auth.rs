//! Digest authentication: RFC examples, client/verifier round trips,
//! stale nonces, rejected credentials, proxies, several challenges, nonce
//! counts and replays.

use sipact_proto::SplitMix64;
use sipact_proto::auth::{
    Algorithm, AuthError, Challenge, Credentials, DigestClient, DigestVerifier, Qop, Secret, VerifyError, ha1,
};
use sipact_proto::message::{Auth, Bytes, Header, Method, Request, Response, SipMessage, Uri};

const HEAD: &str = "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776\r\n\
                    Max-Forwards: 70\r\n\
                    To: <sip:bob@example.com>\r\n\
                    From: <sip:alice@example.com>;tag=1928\r\n\
                    Call-ID: a84b4c76e66710\r\n";

/// A response parsed from text, with the given challenge lines.
fn parse_response(status: &str, challenges: &[&str]) -> Response {
    let mut raw = format!("SIP/2.0 {status}\r\n{HEAD}CSeq: 1 REGISTER\r\n");
    for c in challenges {
        raw.push_str(c);
        raw.push_str("\r\n");
    }
    raw.push_str("Content-Length: 0\r\n\r\n");
    match SipMessage::parse(raw.into_bytes()).unwrap() {
        SipMessage::Response(r) => r,
        SipMessage::Request(_) => panic!("not a response"),
    }
}

fn first_challenge(resp: &Response) -> Challenge {
    let auth = resp
        .headers
        .iter()
        .find_map(|h| match h {
            Header::WwwAuthenticate(a) | Header::ProxyAuthenticate(a) => Some(a),
            _ => None,
        })
        .unwrap();
    Challenge::from_auth(auth).unwrap()
}

fn uri() -> Uri {
    Uri::parse("sip:registrar.example.com").unwrap()
}

/// A request with the mandatory headers, parsed from text.
fn request(method: Method, uri: &Uri) -> Request {
    let raw = format!("{method} {uri} SIP/2.0\r\n{HEAD}CSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n");
    match SipMessage::parse(raw.into_bytes()).unwrap() {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("not a request"),
    }
}

fn register() -> Request {
    request(Method::Register, &uri())
}

fn auth_headers(req: &Request) -> Vec<&Auth> {
    req.headers
        .iter()
        .filter_map(|h| match h {
            Header::Authorization(a) | Header::ProxyAuthorization(a) => Some(a),
            _ => None,
        })
        .collect()
}

/// Prints and re-parses the request, as the far end would see it.
fn over_the_wire(req: &Request) -> Request {
    match SipMessage::parse(req.to_bytes()).unwrap() {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("not a request"),
    }
}

fn alice(user: &str, _realm: &str) -> Option<Secret> {
    (user == "alice").then(|| Secret::Password("wonderland".into()))
}

/// A 401/407 carrying the verifier's challenges.
fn challenge_from(server: &mut DigestVerifier, rng: &mut SplitMix64, now: u64, stale: bool) -> Response {
    let mut resp = Response::new(server.status());
    server.add_challenges(&mut resp, rng, now, stale);
    resp
}

// --- RFC examples ------------------------------------------------------

#[test]
fn rfc2617_section_3_5_example() {
    let resp = parse_response(
        "401 Unauthorized",
        &["WWW-Authenticate: Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
           nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""],
    );
    let ch = first_challenge(&resp);
    assert_eq!(ch.algorithm, Algorithm::Md5);
    assert_eq!(ch.qop, vec![Qop::Auth, Qop::AuthInt]);
    let creds = Credentials::new("Mufasa", "Circle Of Life");
    let auth = ch.respond(&creds, "GET", "/dir/index.html", b"", 1, "0a4f113b").unwrap();
    assert_eq!(auth.param("response"), Some("6629fae49393a05397450978507c4ef1"));
    assert_eq!(auth.param("username"), Some("Mufasa"));
    assert_eq!(auth.param("realm"), Some("testrealm@host.com"));
    assert_eq!(auth.param("uri"), Some("/dir/index.html"));
    assert_eq!(auth.param("qop"), Some("auth"));
    assert_eq!(auth.param("nc"), Some("00000001"));
    assert_eq!(auth.param("cnonce"), Some("0a4f113b"));
    assert_eq!(auth.param("opaque"), Some("5ccc069c403ebaf9f0171e9517f40e41"));
}

const RFC7616_CHALLENGE: &str = "realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
     nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
     opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

#[test]
fn rfc7616_section_3_9_1_examples() {
    let resp = parse_response(
        "401 Unauthorized",
        &[
            &format!("WWW-Authenticate: Digest {RFC7616_CHALLENGE}, algorithm=SHA-256"),
            &format!("WWW-Authenticate: Digest {RFC7616_CHALLENGE}, algorithm=MD5"),
        ],
    );
    let creds = Credentials::new("Mufasa", "Circle of Life");
    let challenges: Vec<Challenge> = resp
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::WwwAuthenticate(a) => Some(Challenge::from_auth(a).unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(challenges.len(), 2);
    let expect = [
        (Algorithm::Sha256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        (Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
    ];
    for (ch, (alg, response)) in challenges.iter().zip(expect) {
        assert_eq!(ch.algorithm, alg);
        assert_eq!(ch.opaque.as_deref(), Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"));
        let auth = ch.respond(&creds, "GET", "/dir/index.html", b"", 1, RFC7616_CNONCE).unwrap();
        assert_eq!(auth.param("response"), Some(response), "{alg}");
        assert_eq!(auth.param("algorithm"), Some(alg.as_str()));
        assert_eq!(auth.param("cnonce"), Some(RFC7616_CNONCE));
    }
}

// --- round trips -------------------------------------------------------

#[test]
fn round_trip_every_algorithm() {
    for alg in [
        Algorithm::Md5,
        Algorithm::Md5Sess,
        Algorithm::Sha256,
        Algorithm::Sha256Sess,
        Algorithm::Sha512_256,
        Algorithm::Sha512_256Sess,
    ] {
        let mut rng = SplitMix64::new(42);
        let mut server = DigestVerifier::new("example.com").with_algorithms(vec![alg]);
        let mut client = DigestClient::new(Credentials::new("alice", "wonderland"));

        assert_eq!(server.verify(&register(), alice, 0), Err(VerifyError::NoCredentials));
        let resp = over_the_wire_response(&challenge_from(&mut server, &mut rng, 0, false));
        let outcome = client.handle_challenge(&resp).unwrap();
        assert_eq!(outcome.realms, vec!["example.com".to_string()]);
        assert!(!outcome.stale);

        let mut req = register();
        assert_eq!(client.authorize(&mut req, &mut rng).unwrap(), 1);
        let req = over_the_wire(&req);
        let auth = auth_headers(&req)[0];
        assert_eq!(auth.param("algorithm"), Some(alg.as_str()));
        assert_eq!(auth.param("uri"), Some("sip:registrar.example.com"));
        assert_eq!(server.verify(&req, alice, 1), Ok("alice".to_string()), "{alg}");
    }
}

fn over_the_wire_response(resp: &Response) -> Response {
    let mut r = resp.clone();
    // Give it the mandatory headers so it parses like a real one.
    let parsed = parse_response("401 Unauthorized", &[]);
    for h in parsed.headers.iter() {
        r.headers.push(h.clone());
    }
    match SipMessage::parse(r.to_bytes()).unwrap() {
        SipMessage::Response(r) => r,
        SipMessage::Request(_) => panic!("not a response"),
    }
}

#[test]
fn prefers_sha256_over_md5_for_the_same_realm() {
    let mut rng = SplitMix64::new(1);
    // MD5 offered first: the client still picks SHA-256.
    let mut server = DigestVerifier::new("example.com").with_algorithms(vec![Algorithm::Md5, Algorithm::Sha256]);
    let resp = challenge_from(&mut server, &mut rng, 0, false);
    assert_eq!(resp.headers.len(), 2);
    let mut client = DigestClient::new(Credentials::new("alice", "wonderland"));
    client.handle_challenge(&resp).unwrap();
    let mut req = register();
    assert_eq!(client.authorize(&mut req, &mut rng).unwrap(), 1);
    assert_eq!(auth_headers(&req)[0].param("algorithm"), Some("SHA-256"));
    assert_eq!(server.verify(&req, alice, 0), Ok("alice".into()));
}

#[test]
fn skips_unknown_algorithm_when_another_is_usable() {
    let resp = parse_response(
        "401 Unauthorized",
        &[
            "WWW-Authenticate: Digest realm=\"r\", nonce=\"n1\", algorithm=SHA-1-fancy, qop=\"auth\"",
            "WWW-Authenticate: Digest realm=\"r\", nonce=\"n1\", algorithm=MD5, qop=\"auth\"",
        ],
    );
    let mut client = DigestClient::new(Credentials::new("u", "p"));
    client.handle_challenge(&resp).unwrap();
    let mut req = register();
    client.authorize(&mut req, &mut SplitMix64::new(3)).unwrap();
    assert_eq!(auth_headers(&req)[0].param("algorithm"), Some("MD5"));
}

// --- stale, failures ---------------------------------------------------

#[test]
fn stale_nonce_retry_is_not_a_failure() {
    let mut rng = SplitMix64::new(7);
    let mut server = DigestVerifier::new("example.com").with_nonce_lifetime(30);
    let mut client = DigestClient::new(Credentials::new("alice", "wonderland"));
    client.handle_challenge(&challenge_from(&mut server, &mut rng, 0, false)).unwrap();

    let mut req = register();
    client.authorize(&mut req, &mut rng).unwrap();
    assert_eq!(server.verify(&req, alice, 5), Ok("alice".into()));

    // Much later, a preemptive request with the old nonce: stale.
    let mut req = register();
    client.authorize(&mut req, &mut rng).unwrap();
    let err = server.verify(&req, alice, 100).unwrap_err();
    assert_eq!(err, VerifyError::Stale);
    assert!(err.is_stale());

    let resp = challenge_from(&mut server, &mut rng, 100, err.is_stale());
    assert!(first_challenge(&resp).stale);
    let outcome = client.handle_challenge(&resp).unwrap();
    assert!(outcome.stale);

    let mut retry = register();
    client.authorize(&mut retry, &mut rng).unwrap();
    assert_eq!(auth_headers(&retry)[0].param("nc"), Some("00000001"));
    assert_eq!(server.verify(&retry, alice, 101), Ok("alice".into()));
}

#[test]
fn stale_right_after_sending_is_still_a_retry() {
    let mut rng = SplitMix64::new(8);
    let mut server = DigestVerifier::new("example.com").with_nonce_lifetime(10);
    let mut client = DigestClient::new(Credentials::new("alice", "wonderland"));
    client.handle_challenge(&challenge_from(&mut server, &mut rng, 0, false)).unwrap();
    let mut req = register();
    client.authorize(&mut req, &mut rng).unwrap();
    let err = server.verify(&req, alice, 50).unwrap_err();
    assert!(err.is_stale());
    assert!(client.handle_challenge(&challenge_from(&mut server, &mut rng, 50, true)).unwrap().stale);
    let mut req = register();
    client.authorize(&mut req, &mut rng).unwrap();
    assert_eq!(server.verify(&req, alice, 51), Ok("alice".into()));
}

#[test]
fn wrong_password_is_rejected_on_both_sides() {
    let mut rng = SplitMix64::new(9);
    let mut server = DigestVerifier::new("example.com");
    let mut client = DigestClient::new(Credentials::new("alice", "looking-glass"));
    client.handle_challenge(&challenge_from(&mut server, &mut rng, 0, false)).unwrap();

    let mut req = register();
    client.authorize(&mut req, &mut rng).unwrap();
    let err = server.verify(&req, alice, 1).unwrap_err();
    assert_eq!(err, VerifyError::WrongResponse);
    assert!(!err.is_stale());

    let resp = challenge_from(&mut server, &mut rng, 1, false);
    assert_eq!(client.handle_challenge(&resp), Err(AuthError::CredentialsRejected { realm: "example.com".into() }));
    // The failed realm is forgotten: nothing more is sent.
    let mut req = register();
    assert_eq!(client.authorize(&mut req, &mut rng).unwrap(), 0);
}

#[test]
fn unknown_user_is_rejected() {
    let mut rng = SplitMix64::new(10);
    let mut server = DigestVerifier::new("example.com");
    let mut client = DigestClient::new(Credentials::new("mallory", "x"));
    client.handle_challenge(&challenge_from(&mut server, &mut rng, 0, false)).unwrap();
    let mut req = register();
    client.authorize(&mut req, &mut rng).unwrap();
    assert_eq!(server.verify(&req, alice, 1), Err(VerifyError::UnknownUser));
}

#[test]
fn silently_expired_nonce_after_reuse_gets_one_more_try() {
    // Servers that omit stale=true: after several successful reuses a
    // fresh nonce without stale is answered once; failing again is final.
    let mut rng = SplitMix64::new(11);
    let mut server = DigestVerifier::new("example.com");
    let mut client = DigestClient::new(Credentials::new("alice", "wonderland"));
    client.handle_challenge(&challenge_from(&mut server, &mut rng, 0, false)).unwrap();
    for t in 1..=3 {
        let mut req = register();
        client.authorize(&mut req, &mut rng).unwrap();
        assert_eq!(server.verify(&req, alice, t), Ok("alice".into()));
    }
    client.handle_challenge(&challenge_from(&mut server, &mut rng, 4, false)).unwrap();
    let mut req = register();
    client.authorize(&mut req, &mut rng).unwrap();
    assert_eq!(auth_headers(&req)[0].param("nc"), Some("00000001"));
    assert!(matches!(
        client.handle_challenge(&challenge_from(&mut server, &mut rng, 5, false)),
        Err(AuthError::CredentialsRejected { .. })
    ));
}

#[test]
fn client_errors() {
    let mut client = DigestClient::new(Credentials::new("u", "p").for_realm("mine"));
    assert_eq!(client.handle_challenge(&parse_response("200 OK", &[])), Err(AuthError::NoChallenge));
    assert_eq!(client.handle_challenge(&parse_response("401 Unauthorized", &[])), Err(AuthError::NoChallenge));
    assert_eq!(
        client.handle_challenge(&parse_response("401 Unauthorized", &["WWW-Authenticate: Basic realm=\"mine\""])),
        Err(AuthError::NoChallenge)
    );
    assert_eq!(
        client.handle_challenge(&parse_response(
            "401 Unauthorized",
            &["WWW-Authenticate: Digest realm=\"mine\", nonce=\"n\", algorithm=SHA-1"]
        )),
        Err(AuthError::UnsupportedAlgorithm("SHA-1".into()))
    );
    assert_eq!(
        client.handle_challenge(&parse_response(
            "401 Unauthorized",
            &["WWW-Authenticate: Digest realm=\"mine\", nonce=\"n\", qop=\"auth-conf\""]
        )),
        Err(AuthError::UnsupportedQop("auth-conf".into()))
    );
    assert_eq!(
        client.handle_challenge(&parse_response("401 Unauthorized", &["WWW-Authenticate: Digest nonce=\"n\""])),
        Err(AuthError::MalformedChallenge("missing realm"))
    );
    assert_eq!(
        client.handle_challenge(&parse_response(
            "401 Unauthorized",
            &["WWW-Authenticate: Digest realm=\"theirs\", nonce=\"n\", qop=\"auth\""]
        )),
        Err(AuthError::NoCredentialsForRealm("theirs".into()))
    );
}

// --- proxies and several challenges ------------------------------------

#[test]
fn proxy_407_uses_proxy_authorization() {
    let mut rng = SplitMix64::new(12);
    let mut proxy = DigestVerifier::new("proxy.example.com").proxy();
    let mut uas = DigestVerifier::new("example.com");
    let mut client = DigestClient::new(Credentials::new("alice", "wonderland"));

    let resp = challenge_from(&mut proxy, &mut rng, 0, false);
    assert_eq!(resp.status, 407);
    assert!(resp.headers.iter().all(|h| matches!(h, Header::ProxyAuthenticate(_))));
    client.handle_challenge(&resp).unwrap();

    let mut invite = request(Method::Invite, &Uri::parse("sip:bob@example.com").unwrap());
    client.authorize(&mut invite, &mut rng).unwrap();
    let invite = over_the_wire(&invite);
    assert!(invite.headers.iter().any(|h| matches!(h, Header::ProxyAuthorization(_))));
    assert!(!invite.headers.iter().any(|h| matches!(h, Header::Authorization(_))));
    assert_eq!(proxy.verify(&invite, alice, 1), Ok("alice".into()));
    // The UAS reads Authorization only.
    assert_eq!(uas.verify(&invite, alice, 1), Err(VerifyError::NoCredentials));

    // Then the UAS challenges too: both headers go on the next request.
    client.handle_challenge(&challenge_from(&mut uas, &mut rng, 2, false)).unwrap();
    let mut invite = request(Method::Invite, &Uri::parse("sip:bob@example.com").unwrap());
    assert_eq!(client.authorize(&mut invite, &mut rng).unwrap(), 2);
    assert_eq!(proxy.verify(&invite, alice, 3), Ok("alice".into()));
    assert_eq!(uas.verify(&invite, alice, 3), Ok("alice".into()));
}

#[test]
fn two_realms_in_one_401() {
    let mut rng = SplitMix64::new(13);
    let mut a = DigestVerifier::new("a.example.com");
    let mut b = DigestVerifier::new("b.example.com").with_algorithms(vec![Algorithm::Md5]);
    let mut resp = challenge_from(&mut a, &mut rng, 0, false);
    b.add_challenges(&mut resp, &mut rng, 0, false);
    let resp = over_the_wire_response(&resp);

    let bob = |user: &str, _: &str| (user == "bob").then(|| Secret::Password("builder".into()));
    let mut client = DigestClient::with_credentials(vec![
        Credentials::new("alice", "wonderland"),
        Credentials::new("bob", "builder").for_realm("b.example.com"),
    ]);
    let outcome = client.handle_challenge(&resp).unwrap();
    assert_eq!(outcome.realms, vec!["a.example.com".to_string(), "b.example.com".to_string()]);

    let mut req = register();
    assert_eq!(client.authorize(&mut req, &mut rng).unwrap(), 2);
    let req = over_the_wire(&req);
    assert_eq!(a.verify(&req, alice, 1), Ok("alice".into()));
    assert_eq!(b.verify(&req, bob, 1), Ok("bob".into()));

    // Credentials for one realm only: that one is answered.
    let mut only_b = DigestClient::new(Credentials::new("bob", "builder").for_realm("b.example.com"));
    assert_eq!(only_b.handle_challenge(&resp).unwrap().realms, vec!["b.example.com".to_string()]);
}

// --- nonce counts ------------------------------------------------------

#[test]
fn nonce_count_increments_on_reuse() {
    let mut rng = SplitMix64::new(14);
    let mut server = DigestVerifier::new("example.com");
    let mut client = DigestClient::new(Credentials::new("alice", "wonderland"));
    client.handle_challenge(&challenge_from(&mut server, &mut rng, 0, false)).unwrap();
    let mut cnonces = Vec::new();
    for (i, nc) in ["00000001", "00000002", "00000003"].iter().enumerate() {
        let mut req = register();
        client.authorize(&mut req, &mut rng).unwrap();
        let auth = auth_headers(&req)[0].clone();
        assert_eq!(auth.param("nc"), Some(*nc));
        cnonces.push(auth.param("cnonce").unwrap().to_owned());
        assert_eq!(server.verify(&req, alice, i as u64), Ok("alice".into()));
    }
    cnonces.dedup();
    assert_eq!(cnonces.len(), 3);
}

#[test]
fn replayed_nonce_count_is_rejected() {
    let mut rng = SplitMix64::new(15);
    let mut server = DigestVerifier::new("example.com");
    let mut client = DigestClient::new(Credentials::new("alice", "wonderland"));
    client.handle_challenge(&challenge_from(&mut server, &mut rng, 0, false)).unwrap();
    let mut first = register();
    client.authorize(&mut first, &mut rng).unwrap();
    let mut second = register();
    client.authorize(&mut second, &mut rng).unwrap();
    assert_eq!(server.verify(&first, alice, 1), Ok("alice".into()));
    assert_eq!(server.verify(&first, alice, 1), Err(VerifyError::Replay));
    assert_eq!(server.verify(&second, alice, 1), Ok("alice".into()));
    // An older count after a newer one is a replay too.
    assert_eq!(server.verify(&first, alice, 1), Err(VerifyError::Replay));
}

#[test]
fn reauthorizing_replaces_the_old_header() {
    let mut rng = SplitMix64::new(16);
    let mut server = DigestVerifier::new("example.com");
    let mut client = DigestClient::new(Credentials::new("alice", "wonderland"));
    client.handle_challenge(&challenge_from(&mut server, &mut rng, 0, false)).unwrap();
    let mut req = register();
    client.authorize(&mut req, &mut rng).unwrap();
    client.authorize(&mut req, &mut rng).unwrap();
    let auths = auth_headers(&req);
    assert_eq!(auths.len(), 1);
    assert_eq!(auths[0].param("nc"), Some("00000002"));
}

// --- verifier checks ---------------------------------------------------

#[test]
fn uri_must_match_the_request_uri() {
    let mut rng = SplitMix64::new(17);
    let mut server = DigestVerifier::new("example.com");
    let mut client = DigestClient::new(Credentials::new("alice", "wonderland"));
    client.handle_challenge(&challenge_from(&mut server, &mut rng, 0, false)).unwrap();
    let mut req = register();
    client.authorize(&mut req, &mut rng).unwrap();
    req.uri = Uri::parse("sip:elsewhere.example.com").unwrap();
    assert_eq!(server.verify(&req, alice, 1), Err(VerifyError::UriMismatch));
    // An equivalent spelling (case of the host) matches.
    let mut req = register();
    client.authorize(&mut req, &mut rng).unwrap();
    req.uri = Uri::parse("sip:REGISTRAR.example.com").unwrap();
    assert_eq!(server.verify(&req, alice, 1), Ok("alice".into()));
}

#[test]
fn auth_int_protects_the_body() {
    let mut rng = SplitMix64::new(18);
    let mut server = DigestVerifier::new("example.com").with_qop(vec![Qop::AuthInt]);
    let mut client = DigestClient::new(Credentials::new("alice", "wonderland"));
    client.handle_challenge(&challenge_from(&mut server, &mut rng, 0, false)).unwrap();
    let mut req = Request::new(Method::Message, uri());
    req.body = Bytes::from_static(b"hello");
    client.authorize(&mut req, &mut rng).unwrap();
    assert_eq!(auth_headers(&req)[0].param("qop"), Some("auth-int"));
    let mut tampered = req.clone();
    tampered.body = Bytes::from_static(b"jello");
    assert_eq!(server.verify(&tampered, alice, 1), Err(VerifyError::WrongResponse));
    assert_eq!(server.verify(&req, alice, 1), Ok("alice".into()));
}

#[test]
fn rfc2069_without_qop() {
    let mut rng = SplitMix64::new(19);
    let mut server = DigestVerifier::new("example.com").with_qop(vec![]);
    let mut client = DigestClient::new(Credentials::new("alice", "wonderland"));
    client.handle_challenge(&challenge_from(&mut server, &mut rng, 0, false)).unwrap();
    let mut req = register();
    client.authorize(&mut req, &mut rng).unwrap();
    let auth = auth_headers(&req)[0];
    assert_eq!(auth.param("qop"), None);
    assert_eq!(auth.param("nc"), None);
    assert_eq!(auth.param("cnonce"), None);
    assert_eq!(server.verify(&req, alice, 1), Ok("alice".into()));
    // Without nonce counts a nonce serves once; a reuse asks for a new one.
    assert_eq!(server.verify(&req, alice, 2), Err(VerifyError::Stale));
}

#[test]
fn stored_ha1_instead_of_password() {
    let mut rng = SplitMix64::new(20);
    let mut server = DigestVerifier::new("example.com").with_algorithms(vec![Algorithm::Sha256Sess]);
    let stored = ha1(Algorithm::Sha256, "alice", "example.com", "wonderland");
    let lookup = |user: &str, realm: &str| {
        (user == "alice" && realm == "example.com")
            .then(|| Secret::Ha1 { algorithm: Algorithm::Sha256, ha1: stored.clone() })
    };
    let mut client = DigestClient::new(Credentials::new("alice", "wonderland"));
    client.handle_challenge(&challenge_from(&mut server, &mut rng, 0, false)).unwrap();
    let mut req = register();
    client.authorize(&mut req, &mut rng).unwrap();
    assert_eq!(server.verify(&req, lookup, 1), Ok("alice".into()));
    // An MD5 HA1 cannot serve SHA-256.
    let md5_only = |_: &str, _: &str| {
        Some(Secret::Ha1 { algorithm: Algorithm::Md5, ha1: ha1(Algorithm::Md5, "alice", "example.com", "wonderland") })
    };
    assert_eq!(server.verify(&req, md5_only, 1), Err(VerifyError::UnknownUser));
}

#[test]
fn algorithm_not_offered_is_refused() {
    let mut rng = SplitMix64::new(21);
    let mut md5_server = DigestVerifier::new("example.com").with_algorithms(vec![Algorithm::Md5]);
    let mut sha_server = DigestVerifier::new("example.com").with_algorithms(vec![Algorithm::Sha256]);
    let mut client = DigestClient::new(Credentials::new("alice", "wonderland"));
    client.handle_challenge(&challenge_from(&mut md5_server, &mut rng, 0, false)).unwrap();
    let mut req = register();
    client.authorize(&mut req, &mut rng).unwrap();
    assert_eq!(sha_server.verify(&req, alice, 1), Err(VerifyError::UnsupportedAlgorithm));
    // A nonce the verifier never issued, with a correct digest: stale.
    let mut other_md5 = DigestVerifier::new("example.com").with_algorithms(vec![Algorithm::Md5]);
    assert_eq!(other_md5.verify(&req, alice, 1), Err(VerifyError::Stale));
    assert_eq!(md5_server.verify(&req, alice, 1), Ok("alice".into()));
}

#[test]
fn forgotten_nonces_are_stale() {
    let mut rng = SplitMix64::new(22);
    let mut server = DigestVerifier::new("example.com").with_max_nonces(1);
    let mut client = DigestClient::new(Credentials::new("alice", "wonderland"));
    client.handle_challenge(&challenge_from(&mut server, &mut rng, 0, false)).unwrap();
    // Another client's challenge pushes the first nonce out.
    let _ = server.challenge(&mut rng, 1);
    let mut req = register();
    client.authorize(&mut req, &mut rng).unwrap();
    assert_eq!(server.verify(&req, alice, 2), Err(VerifyError::Stale));
}

#[test]
fn challenge_header_is_well_formed() {
    let mut rng = SplitMix64::new(23);
    let mut server = DigestVerifier::new("example.com");
    let auth = server.challenge(&mut rng, 77);
    let text = Header::WwwAuthenticate(auth.clone()).to_string();
    assert!(text.starts_with("WWW-Authenticate: Digest realm=\"example.com\""), "{text}");
    let ch = Challenge::from_auth(&auth).unwrap();
    assert_eq!(ch.algorithm, Algorithm::Sha256);
    assert_eq!(ch.qop, vec![Qop::Auth]);
    assert!(!ch.stale);
    assert_eq!(ch.nonce.len(), 48);
}

// --- secrets -----------------------------------------------------------

#[test]
fn debug_never_shows_the_password() {
    let creds = Credentials::new("alice", "hunter2-secret").for_realm("example.com");
    let text = format!("{creds:?} {:?}", DigestClient::new(creds.clone()));
    assert!(!text.contains("hunter2-secret"), "{text}");
    assert!(text.contains("alice"));
    assert!(text.contains("example.com"));
    let secret = format!("{:?}", Secret::Password("hunter2-secret".into()));
    assert!(!secret.contains("hunter2"), "{secret}");
}
