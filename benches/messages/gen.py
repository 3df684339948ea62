#!/usr/bin/env python3
"""Regenerates the benchmark sample messages with exact sizes (CRLF line ends).

Each template has one `{pad}` slot (inside a token-safe value) that is filled
with filler characters until the message (or the SDP body) has the target size.
Content-Length is computed from the final body.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CRLF = "\r\n"


HEX = "7f3a9c0e5b21d84f6a"


def fit(render, target, filler=HEX):
    """Finds the pad (a prefix of `filler`, cycled) that makes len(render(pad)) == target."""
    base = len(render(""))
    need = target - base
    assert need >= 0, f"template already {base} bytes > {target}"
    out = render((filler * (need // len(filler) + 1))[:need])
    assert len(out) == target, (len(out), target)
    return out


def message(start, headers, body=""):
    def render(clen):
        lines = [start] + headers + [f"Content-Length: {clen}"]
        return CRLF.join(lines) + CRLF + CRLF + body
    return render(len(body.encode()))


def sdp(lines):
    return CRLF.join(lines) + CRLF


def write(name, data):
    b = data.encode()
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(b)
    print(f"{name}: {len(b)} bytes")


# (a) INVITE with SDP, exactly 486 bytes total.
def a(pad):
    body = sdp([
        "v=0",
        "o=alice 2890844526 2890844526 IN IP4 192.0.2.10",
        "s=-",
        "c=IN IP4 192.0.2.10",
        "t=0 0",
        "m=audio 49170 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
    ])
    return message("INVITE sip:bob@example.com SIP/2.0", [
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9",
        "Max-Forwards: 70",
        "From: Alice <sip:alice@example.com>;tag=9fxced76sl",
        "To: Bob <sip:bob@example.com>",
        f"Call-ID: 3848276298220188511{pad}@192.0.2.10",
        "CSeq: 1 INVITE",
        "Contact: <sip:alice@192.0.2.10:5060>",
        "Content-Type: application/sdp",
    ], body)


# (b) 180 Ringing with two Via, exactly 410 bytes.
def b(pad):
    return message("SIP/2.0 180 Ringing", [
        "Via: SIP/2.0/UDP proxy.example.com:5060;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.3",
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9;received=192.0.2.10",
        "From: Alice <sip:alice@example.com>;tag=9fxced76sl",
        f"To: Bob <sip:bob@example.com>;tag=8321234356{pad}",
        "Call-ID: 3848276298220188511@192.0.2.10",
        "CSeq: 1 INVITE",
        "Contact: <sip:bob@192.0.2.20:5060>",
    ])


# (c) OPTIONS, exactly 250 bytes.
def c(pad):
    return message("OPTIONS sip:example.com SIP/2.0", [
        "Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK776",
        "Max-Forwards: 70",
        "To: <sip:example.com>",
        "From: <sip:alice@example.com>;tag=1928",
        f"Call-ID: a84b4c{pad}",
        "CSeq: 63 OPTIONS",
        "Contact: <sip:alice@192.0.2.10>",
    ])


# (d) INVITE through two proxies: 3 Via, Record-Route, Route, Allow,
# Supported and a 300-byte SDP; 1220 bytes total.
def d_sdp(pad):
    return sdp([
        "v=0",
        "o=alice 2890844526 2890844527 IN IP4 192.0.2.10",
        "s=Call",
        "c=IN IP4 192.0.2.10",
        "t=0 0",
        "m=audio 49170 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
        f"a=x-session-id:{pad}",
    ])


D_SDP = fit(d_sdp, 300)


def d(pad):
    return message("INVITE sip:bob@192.0.2.20:5060;transport=udp SIP/2.0", [
        "Via: SIP/2.0/UDP edge.example.com:5060;branch=z9hG4bK2d4790.1",
        "Via: SIP/2.0/UDP proxy.example.com:5060;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.3",
        "Via: SIP/2.0/UDP 192.0.2.10:5060;rport=5060;branch=z9hG4bK74bf9;received=192.0.2.10",
        "Max-Forwards: 68",
        "Record-Route: <sip:edge.example.com;lr>",
        "Record-Route: <sip:proxy.example.com;lr>",
        "Route: <sip:core.example.com;lr>",
        "From: \"Alice Liddell\" <sip:alice@example.com>;tag=9fxced76sl",
        "To: \"Bob\" <sip:bob@example.com>",
        "Call-ID: 3848276298220188511@192.0.2.10",
        "CSeq: 1 INVITE",
        "Contact: \"Alice Liddell\" <sip:alice@192.0.2.10:5060;transport=udp>;+sip.ice;expires=3600",
        "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REFER, NOTIFY, MESSAGE",
        "Supported: replaces, timer, 100rel, norefersub",
        f"User-Agent: ExamplePhone/4.2.1 build-{pad}",
        "Content-Type: application/sdp",
    ], D_SDP)


# (e) 200 OK to the INVITE (for the printer bench).
def e(pad):
    return message("SIP/2.0 200 OK", [
        "Via: SIP/2.0/UDP proxy.example.com:5060;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.3",
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9;received=192.0.2.10",
        "Record-Route: <sip:proxy.example.com;lr>",
        "From: Alice <sip:alice@example.com>;tag=9fxced76sl",
        "To: Bob <sip:bob@example.com>;tag=8321234356",
        "Call-ID: 3848276298220188511@192.0.2.10",
        "CSeq: 1 INVITE",
        "Contact: <sip:bob@192.0.2.20:5060>",
        "Content-Type: application/sdp",
    ], sdp([
        "v=0",
        "o=bob 2808844564 2808844564 IN IP4 192.0.2.20",
        f"s=-{pad}",
        "c=IN IP4 192.0.2.20",
        "t=0 0",
        "m=audio 3456 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
    ]))


write("a_invite_486.sip", fit(a, 486))
write("b_ringing_410.sip", fit(b, 410))
write("c_options_250.sip", fit(c, 250))
write("d_invite_1220.sip", fit(d, 1220))
write("e_200ok.sip", e(""))
