//! SDP (RFC 8866) vectors, errors and property tests.

use proptest::prelude::*;
use sipact_media::sdp::*;

/// A Chrome-style WebRTC offer (audio + video, BUNDLE, ICE, DTLS).
const WEBRTC: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
a=extmap-allow-mixed\r\n\
a=msid-semantic: WMS stream1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:1467250027 1 udp 2122260223 192.168.0.196 46243 typ host generation 0\r\n\
a=candidate:842163049 1 udp 1686052607 203.0.113.7 46243 typ srflx raddr 192.168.0.196 rport 46243 generation 0\r\n\
a=ice-ufrag:F7gI\r\n\
a=ice-pwd:x9cml/YzichV2+XlhiMu8g\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=sendrecv\r\n\
a=msid:stream1 track1\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:63 red/48000/2\r\n\
a=fmtp:63 111/111\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:13 CN/8000\r\n\
a=rtpmap:110 telephone-event/48000\r\n\
a=rtpmap:126 telephone-event/8000\r\n\
a=ssrc:3735928559 cname:4TOk42mSjXCkVIa6\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
c=IN IP4 0.0.0.0\r\n\
b=AS:2000\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:F7gI\r\n\
a=ice-pwd:x9cml/YzichV2+XlhiMu8g\r\n\
a=fingerprint:sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F\r\n\
a=setup:actpass\r\n\
a=mid:1\r\n\
a=recvonly\r\n\
a=rtcp-mux\r\n\
a=rtcp-rsize\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\n";

/// A desk phone's plain RTP/AVP offer.
const PLAIN: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=Talk\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

#[test]
fn webrtc_vector_parses_with_typed_accessors_and_prints_back() {
    let d = SessionDescription::parse(WEBRTC.as_bytes()).unwrap();
    assert_eq!(d.origin.session_id, 4611731400430051336);
    assert_eq!(d.origin.session_version, 2);
    assert_eq!(d.attribute("group"), Some("BUNDLE 0 1"));
    assert_eq!(d.media.len(), 2);
    let a = &d.media[0];
    assert_eq!(a.proto, "UDP/TLS/RTP/SAVPF");
    assert_eq!(a.payload_types(), vec![111, 63, 9, 0, 8, 13, 110, 126]);
    assert_eq!(
        a.rtpmap(111).unwrap(),
        RtpMap { payload_type: 111, encoding: "opus".into(), clock_rate: 48000, channels: Some(2) }
    );
    assert_eq!(a.fmtp(111), Some("minptime=10;useinbandfec=1"));
    assert_eq!(a.fmtp(63), Some("111/111"));
    assert_eq!(a.mid(), Some("0"));
    assert!(a.rtcp_mux());
    let rtcp = a.rtcp().unwrap();
    assert_eq!(rtcp.port, 9);
    assert_eq!(rtcp.connection.unwrap().address, "0.0.0.0");
    assert_eq!(d.ice_ufrag(0), Some("F7gI"));
    assert_eq!(d.ice_pwd(0), Some("x9cml/YzichV2+XlhiMu8g"));
    let fp = d.fingerprint(0).unwrap();
    assert_eq!(fp.hash, "sha-256");
    assert!(fp.value.starts_with("D2:FA"));
    assert_eq!(d.setup(0), Some(Setup::ActPass));
    let cands: Vec<&str> = a.candidates().collect();
    assert_eq!(cands.len(), 2);
    assert!(cands[1].ends_with("rport 46243 generation 0"));
    assert_eq!(d.media_direction(0), Direction::SendRecv);
    assert_eq!(d.media_direction(1), Direction::RecvOnly);
    assert_eq!(d.media[1].bandwidths, vec![Bandwidth { bwtype: "AS".into(), bandwidth: 2000 }]);
    // Attributes keep their order, and the print is byte-identical.
    assert_eq!(a.attributes[0].name, "rtcp");
    assert_eq!(d.to_string(), WEBRTC);
}

#[test]
fn plain_vector_parses_and_prints_back() {
    let d: SessionDescription = PLAIN.parse().unwrap();
    assert_eq!(d.origin.username, "alice");
    assert_eq!(d.session_name, "Talk");
    assert_eq!(d.media_connection(0).unwrap().ip_addr(), Some("192.0.2.10".parse().unwrap()));
    let m = &d.media[0];
    assert_eq!((m.media.as_str(), m.port, m.proto.as_str()), ("audio", 49170, "RTP/AVP"));
    assert_eq!(m.ptime(), Some(20));
    assert_eq!(m.fmtp(101), Some("0-16"));
    assert_eq!(m.rtpmap(101).unwrap().encoding, "telephone-event");
    assert!(!m.rtcp_mux());
    assert_eq!(m.rtcp(), None);
    assert_eq!(d.to_string(), PLAIN);
}

#[test]
fn hold_variants_set_and_read_the_direction() {
    for (dir, text) in [
        (Direction::SendOnly, "sendonly"),
        (Direction::RecvOnly, "recvonly"),
        (Direction::Inactive, "inactive"),
        (Direction::SendRecv, "sendrecv"),
    ] {
        let mut d = SessionDescription::parse(PLAIN.as_bytes()).unwrap();
        d.media[0].set_direction(dir);
        let printed = d.to_string();
        assert!(printed.contains(&format!("a={text}\r\n")));
        let dirs = d.media[0].attributes.iter().filter(|a| Direction::from_name(&a.name).is_some()).count();
        assert_eq!(dirs, 1, "exactly one direction attribute");
        // The direction attribute keeps its place (last, after ptime).
        assert!(printed.ends_with(&format!("a=ptime:20\r\na={text}\r\n")));
        let back = SessionDescription::parse(printed.as_bytes()).unwrap();
        assert_eq!(back.media_direction(0), dir);
        assert_eq!(back, d);
    }
    // A session-level direction applies when the media section has none.
    let sess = PLAIN.replace("a=sendrecv\r\n", "").replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
    let d = SessionDescription::parse(sess.as_bytes()).unwrap();
    assert_eq!(d.media[0].direction(), None);
    assert_eq!(d.media_direction(0), Direction::SendOnly);
    // No direction at all means sendrecv.
    let none = PLAIN.replace("a=sendrecv\r\n", "");
    assert_eq!(SessionDescription::parse(none.as_bytes()).unwrap().media_direction(0), Direction::SendRecv);
}

#[test]
fn lf_line_endings_and_all_session_fields() {
    let text = "v=0\no=- 1 1 IN IP6 ::1\ns=x\ni=info\nu=http://example.com/\ne=a@example.com\np=+1 555\n\
                c=IN IP6 ::1\nb=CT:128\nt=3034423619 3042462419\nr=604800 3600 0 90000\nt=0 0\n\
                z=2882844526 -1h\nk=prompt\na=tool:x\nm=audio 5004/2 RTP/AVP 0\ni=voice\nc=IN IP4 224.2.1.1/127/3\nk=clear:abc\n";
    let d = SessionDescription::parse(text.as_bytes()).unwrap();
    assert_eq!(d.times.len(), 2);
    assert_eq!(d.times[0].repeats, vec!["604800 3600 0 90000".to_string()]);
    assert_eq!(d.zone.as_deref(), Some("2882844526 -1h"));
    assert_eq!(d.media[0].num_ports, Some(2));
    assert_eq!(d.media[0].connections[0].address, "224.2.1.1/127/3");
    assert_eq!(d.media[0].connections[0].ip_addr(), Some("224.2.1.1".parse().unwrap()));
    assert_eq!(d.to_string(), text.replace('\n', "\r\n"));
}

#[test]
fn errors_are_typed_with_line_numbers() {
    let e = |s: &str| SessionDescription::parse(s.as_bytes()).unwrap_err();
    assert_eq!(e(""), SdpError::Missing { field: "v" });
    assert_eq!(e("v=0\r\ns=-\r\nt=0 0\r\n"), SdpError::Missing { field: "o" });
    assert_eq!(e("v=0\r\no=- 1 1 IN IP4 a\r\nt=0 0\r\n"), SdpError::Missing { field: "s" });
    assert_eq!(e("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\n"), SdpError::Missing { field: "t" });
    assert_eq!(e("v=0\r\no=- x 1 IN IP4 a\r\n"), SdpError::InvalidValue { line: 2, field: "origin" });
    assert_eq!(e("v=0\r\nq=1\r\n"), SdpError::UnknownType { line: 2, kind: 'q' });
    assert_eq!(e("v=0\r\nhello\r\n"), SdpError::MalformedLine { line: 2 });
    assert_eq!(e("v=0\r\n\r\ns=x\r\n"), SdpError::MalformedLine { line: 2 });
    let media_t = format!("{PLAIN}t=0 0\r\n");
    assert_eq!(e(&media_t), SdpError::UnexpectedLine { line: 13, kind: 't' });
    let bad_port = PLAIN.replace("49170", "99999");
    assert_eq!(e(&bad_port), SdpError::InvalidValue { line: 6, field: "media" });
    assert_eq!(SessionDescription::parse(b"v=0\r\n\xff").unwrap_err(), SdpError::NotUtf8 { offset: 5 });
    assert_eq!(e("s=x\r\nv=0\r\n"), SdpError::UnexpectedLine { line: 2, kind: 'v' });
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.+/-]{1,12}"
}
fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,20}"
}
fn attribute() -> impl Strategy<Value = Attribute> {
    ("[a-z][a-z0-9-]{0,10}", proptest::option::of("[ -~]{0,24}")).prop_map(|(name, value)| Attribute { name, value })
}
fn connection() -> impl Strategy<Value = Connection> {
    (token(), token(), token()).prop_map(|(net_type, addr_type, address)| Connection { net_type, addr_type, address })
}
fn bandwidth() -> impl Strategy<Value = Bandwidth> {
    ("[A-Z]{1,4}", any::<u64>()).prop_map(|(bwtype, bandwidth)| Bandwidth { bwtype, bandwidth })
}
fn media() -> impl Strategy<Value = MediaDescription> {
    (
        ("[a-z]{1,8}", any::<u16>(), proptest::option::of(any::<u16>()), token()),
        proptest::collection::vec("[0-9a-z]{1,4}", 0..5),
        proptest::option::of(text()),
        proptest::collection::vec(connection(), 0..2),
        proptest::collection::vec(bandwidth(), 0..2),
        proptest::option::of(text()),
        proptest::collection::vec(attribute(), 0..6),
    )
        .prop_map(
            |((media, port, num_ports, proto), formats, information, connections, bandwidths, key, attributes)| {
                MediaDescription {
                    media,
                    port,
                    num_ports,
                    proto,
                    formats,
                    information,
                    connections,
                    bandwidths,
                    key,
                    attributes,
                }
            },
        )
}
prop_compose! {
    fn description()(
        origin in (token(), any::<u64>(), any::<u64>(), token(), token(), token()),
        session_name in text(),
        information in proptest::option::of(text()),
        uri in proptest::option::of(text()),
        emails in proptest::collection::vec(text(), 0..2),
        phones in proptest::collection::vec(text(), 0..2),
        connection in proptest::option::of(connection()),
        bandwidths in proptest::collection::vec(bandwidth(), 0..2),
        times in proptest::collection::vec((any::<u64>(), any::<u64>(), proptest::collection::vec(text(), 0..2)), 1..3),
        zone in proptest::option::of(text()),
        key in proptest::option::of(text()),
        attributes in proptest::collection::vec(attribute(), 0..5),
        media in proptest::collection::vec(media(), 0..4),
    ) -> SessionDescription {
        let (username, session_id, session_version, net_type, addr_type, address) = origin;
        SessionDescription {
            version: 0,
            origin: Origin { username, session_id, session_version, net_type, addr_type, address },
            session_name, information, uri, emails, phones, connection, bandwidths,
            times: times.into_iter().map(|(start, stop, repeats)| Timing { start, stop, repeats }).collect(),
            zone, key, attributes, media,
        }
    }
}

proptest! {
    #[test]
    fn parse_print_round_trip(d in description()) {
        let printed = d.to_string();
        prop_assert_eq!(SessionDescription::parse(printed.as_bytes()), Ok(d));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = SessionDescription::parse(&bytes);
    }

    #[test]
    fn arbitrary_sdp_like_lines_never_panic(lines in proptest::collection::vec("[vosiuepcbtrzkamx]=[ -~]{0,30}", 0..20)) {
        let text = lines.join("\r\n");
        if let Ok(d) = SessionDescription::parse(text.as_bytes()) {
            // Whatever parses prints to something that parses to the same.
            prop_assert_eq!(SessionDescription::parse(d.to_string().as_bytes()), Ok(d));
        }
    }
}
