//! Plain RTP against SIPp (Debian `sip-tester`, and tshark, installed by
//! scripts/install-test-deps.sh when missing; the test fails, never skips,
//! without them): SIPp calls `sipact listen --media rtp --echo`
//! (tests/sipp/uac_rtp_echo.xml), plays 3 s of a 440 Hz PCMU tone from a
//! pcap this test writes, and hangs up. tshark captures SIPp's media port on
//! `lo`; the test counts the RTP packets each way on the wire, checks their
//! headers, decodes the echoed μ-law and finds the tone in it with a
//! Goertzel filter. Everything on 127.0.0.1, every process bounded in time
//! and killed by its PID if it overstays.

mod support;

use std::net::UdpSocket;
use std::path::Path;
use std::time::Duration;

use support::*;

/// Sample rate of G.711.
const RATE: u32 = 8000;
/// Samples (and μ-law bytes) in one 20 ms packet.
const FRAME: usize = 160;
/// Packets in the played pcap: 3 s.
const PACKETS: usize = 150;
/// The tone played.
const TONE_HZ: f64 = 440.0;
/// The played pcap's file name, in SIPp's current folder (the scenario names it).
const PCAP_NAME: &str = "tone_440_pcmu.pcap";
/// How long tshark may capture at most (the call lasts about 5 s).
const CAPTURE_SECS: u32 = 40;

// ---- G.711 μ-law ------------------------------------------------------------

/// Linear 16-bit PCM to μ-law (ITU-T G.711, with the usual 0x84 bias).
fn ulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    let mag = s.abs().min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && mag & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (mag >> (exponent + 3)) & 0x0f;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// μ-law to linear 16-bit PCM.
fn ulaw_decode(byte: u8) -> i16 {
    let u = !byte;
    let exponent = i32::from((u >> 4) & 0x07);
    let mantissa = i32::from(u & 0x0f);
    let mag = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if u & 0x80 != 0 { -mag } else { mag }) as i16
}

// ---- Goertzel ---------------------------------------------------------------

/// The share of the energy of `samples` at `freq` (Goertzel): about 1.0
/// for a pure sine at that frequency, about 0.0 far from it.
fn goertzel_share(samples: &[f64], freq: f64) -> f64 {
    let n = samples.len() as f64;
    let energy: f64 = samples.iter().map(|x| x * x).sum();
    if samples.is_empty() || energy == 0.0 {
        return 0.0;
    }
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * freq / f64::from(RATE)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for x in samples {
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power / (n * energy)
}

// ---- the played pcap --------------------------------------------------------

/// Writes a pcap (Ethernet/IPv4/UDP/RTP) of `PACKETS` PCMU packets of a
/// 440 Hz tone, 20 ms apart. SIPp keeps only the UDP payloads and their
/// timing; the addresses and ports are placeholders. Returns the μ-law
/// payloads, in order.
fn write_tone_pcap(path: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    // Global header: magic, version 2.4, zone, sigfigs, snaplen, Ethernet.
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let ssrc: u32 = 0x5151_0440;
    let mut payloads = Vec::new();
    for i in 0..PACKETS {
        let payload: Vec<u8> = (0..FRAME)
            .map(|k| {
                let t = (i * FRAME + k) as f64 / f64::from(RATE);
                ulaw_encode((8000.0 * (2.0 * std::f64::consts::PI * TONE_HZ * t).sin()).round() as i16)
            })
            .collect();
        let mut rtp = Vec::with_capacity(12 + FRAME);
        rtp.push(0x80); // V=2, no padding, no extension, no CSRC
        rtp.push(if i == 0 { 0x80 } else { 0x00 }); // marker on the first packet, PT 0 (PCMU)
        rtp.extend_from_slice(&(1000u16.wrapping_add(i as u16)).to_be_bytes());
        rtp.extend_from_slice(&((i * FRAME) as u32).to_be_bytes());
        rtp.extend_from_slice(&ssrc.to_be_bytes());
        rtp.extend_from_slice(&payload);
        payloads.push(payload);

        let udp_len = 8 + rtp.len();
        let ip_len = 20 + udp_len;
        let mut ip =
            vec![0x45, 0, (ip_len >> 8) as u8, ip_len as u8, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1];
        let mut sum: u32 = ip.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let checksum = !(sum as u16);
        ip[10..12].copy_from_slice(&checksum.to_be_bytes());
        let mut frame = Vec::with_capacity(14 + ip_len);
        frame.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00]);
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&6000u16.to_be_bytes());
        frame.extend_from_slice(&6002u16.to_be_bytes());
        frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
        frame.extend_from_slice(&0u16.to_be_bytes()); // no UDP checksum
        frame.extend_from_slice(&rtp);

        let micros = i as u64 * 20_000;
        out.extend_from_slice(&(1_700_000_000 + (micros / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((micros % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    std::fs::write(path, out).expect("write the tone pcap");
    payloads
}

// ---- the capture ------------------------------------------------------------

/// One UDP datagram of the capture.
#[derive(Debug, Clone)]
struct Datagram {
    /// Capture time, seconds.
    time: f64,
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    payload: Vec<u8>,
}

/// The UDP datagrams over IPv4 of a pcap file (as tshark writes with
/// `-F pcap`): Ethernet, Linux cooked (v1, v2), BSD loopback or raw IP links.
fn read_pcap(bytes: &[u8]) -> Vec<Datagram> {
    assert!(bytes.len() >= 24, "capture too short: {} bytes", bytes.len());
    let magic = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
    let (le, nanos) = match magic {
        0xa1b2_c3d4 => (true, false),
        0xa1b2_3c4d => (true, true),
        0xd4c3_b2a1 => (false, false),
        0x4d3c_b2a1 => (false, true),
        m => panic!("not a pcap file (magic {m:08x})"),
    };
    let u32_at = |at: usize| {
        let b: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
        if le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) }
    };
    let link = u32_at(20);
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let (secs, frac, caplen) = (u32_at(at), u32_at(at + 4), u32_at(at + 8) as usize);
        let data = &bytes[at + 16..(at + 16 + caplen).min(bytes.len())];
        at += 16 + caplen;
        let time = f64::from(secs) + f64::from(frac) / if nanos { 1e9 } else { 1e6 };
        let ip = match link {
            1 if data.len() >= 14 && data[12..14] == [0x08, 0x00] => &data[14..],
            113 if data.len() >= 16 && data[14..16] == [0x08, 0x00] => &data[16..],
            276 if data.len() >= 20 && data[0..2] == [0x08, 0x00] => &data[20..],
            0 if data.len() >= 4 => &data[4..],
            101 | 228 => data,
            _ => continue,
        };
        if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 17 {
            continue;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
        if total < ihl + 8 {
            continue;
        }
        let udp = &ip[ihl..total];
        let src = ([ip[12], ip[13], ip[14], ip[15]], u16::from_be_bytes([udp[0], udp[1]]));
        let dst = ([ip[16], ip[17], ip[18], ip[19]], u16::from_be_bytes([udp[2], udp[3]]));
        let len = usize::from(u16::from_be_bytes([udp[4], udp[5]])).clamp(8, udp.len());
        out.push(Datagram { time, src, dst, payload: udp[8..len].to_vec() });
    }
    out
}

/// The fields of an RTP header this test looks at.
#[derive(Debug, Clone)]
struct Rtp {
    time: f64,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    payload: Vec<u8>,
}

/// Parses an RTP packet (not RTCP: payload types 72-76 with the marker bit
/// are RTCP packet types 200-204).
fn parse_rtp(d: &Datagram) -> Option<Rtp> {
    let b = &d.payload;
    if b.len() < 12 || b[0] >> 6 != 2 || (200..=204).contains(&b[1]) {
        return None;
    }
    let cc = usize::from(b[0] & 0x0f);
    let mut start = 12 + 4 * cc;
    if b[0] & 0x10 != 0 {
        let words = usize::from(u16::from_be_bytes([*b.get(start + 2)?, *b.get(start + 3)?]));
        start += 4 + 4 * words;
    }
    let mut end = b.len();
    if b[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*b.last()?))?;
    }
    Some(Rtp {
        time: d.time,
        payload_type: b[1] & 0x7f,
        sequence: u16::from_be_bytes([b[2], b[3]]),
        timestamp: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        payload: b.get(start..end)?.to_vec(),
    })
}

/// Whether an RTCP compound packet holds a BYE (packet type 203).
fn rtcp_has_bye(b: &[u8]) -> bool {
    let mut at = 0;
    while at + 4 <= b.len() {
        if b[at + 1] == 203 {
            return true;
        }
        at += 4 + 4 * usize::from(u16::from_be_bytes([b[at + 2], b[at + 3]]));
    }
    false
}

/// Checks one direction's stream: payload type 0, 160-byte payloads,
/// sequence numbers one apart, timestamps 160 apart, one SSRC.
fn check_stream(what: &str, pkts: &[Rtp]) {
    let first = pkts.first().unwrap_or_else(|| panic!("{what}: no RTP packet"));
    for (i, p) in pkts.iter().enumerate() {
        assert_eq!(p.payload_type, 0, "{what}: packet {i} is not PCMU: {p:?}");
        assert_eq!(p.payload.len(), FRAME, "{what}: packet {i} has {} payload bytes", p.payload.len());
        assert_eq!(p.ssrc, first.ssrc, "{what}: packet {i} has another SSRC");
    }
    for (i, w) in pkts.windows(2).enumerate() {
        assert_eq!(
            w[1].sequence,
            w[0].sequence.wrapping_add(1),
            "{what}: sequence numbers of packets {i} and {} not consecutive",
            i + 1
        );
        assert_eq!(
            w[1].timestamp.wrapping_sub(w[0].timestamp),
            FRAME as u32,
            "{what}: timestamps of packets {i} and {} not 160 apart",
            i + 1
        );
    }
}

// ---- processes --------------------------------------------------------------

/// An even port `p` with `p..p+4` free for UDP on 127.0.0.1: SIPp binds its
/// audio port and the video port two above it; sipact's RTCP goes to `p+1`.
fn free_media_port() -> u16 {
    for _ in 0..200 {
        let p = free_port();
        if !p.is_multiple_of(2) || p > 65530 {
            continue;
        }
        if (p..p + 4).all(|q| UdpSocket::bind(("127.0.0.1", q)).is_ok()) {
            return p;
        }
    }
    panic!("no four free UDP ports in a row");
}

/// The media port of the `m=audio` line of the first 200 to the INVITE in
/// SIPp's message log.
fn answered_media_port(log: &str) -> Option<u16> {
    let at = log.find("SIP/2.0 200")?;
    let rest = &log[at..];
    let line = rest.lines().find(|l| l.trim_start().starts_with("m=audio "))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn sipp_plays_pcmu_to_the_rtp_echo_and_gets_the_tone_back() {
    require("sipp");
    require("tshark");
    let dir = scratch("rtp-echo");
    let sent_payloads = write_tone_pcap(&dir.join(PCAP_NAME));
    let sip_port = free_port();
    let sipp_sip_port = free_port();
    let media = free_media_port();

    // Capture SIPp's media port (both directions) on loopback, bounded.
    let capture = dir.join("rtp.pcap");
    let capture_s = capture.display().to_string();
    let filter = format!("host 127.0.0.1 and udp and (port {media} or port {} or port {sip_port})", media + 1);
    let duration = format!("duration:{CAPTURE_SECS}");
    let mut tshark = Proc::spawn(
        "tshark",
        &["-n", "-q", "-i", "lo", "-f", &filter, "-a", &duration, "-F", "pcap", "-w", &capture_s],
        Some(&dir),
        &[],
    );
    tshark.wait_stderr("Capturing on", Duration::from_secs(30));

    let mut listener =
        listen(sip_port, &["--transport", "udp", "--media", "rtp", "--echo", "--max-calls", "1", "--events", "json"]);

    let mut args = sipp_base(sipp_sip_port);
    // SIPp looks for the pcap next to the scenario: run a copy beside it.
    let scenario_copy = dir.join("uac_rtp_echo.xml");
    std::fs::copy(scenario("uac_rtp_echo.xml"), &scenario_copy).expect("copy the scenario");
    args.splice(0..0, ["-sf".into(), scenario_copy.display().to_string(), format!("127.0.0.1:{sip_port}")]);
    args.extend(
        ["-mi", "127.0.0.1", "-mp", &media.to_string(), "-m", "1", "-trace_msg", "-message_file", "messages.log"]
            .iter()
            .map(|s| s.to_string()),
    );
    let run = sipp(&dir, &args, Duration::from_secs(60));
    eprintln!("sipp: {run:?}");
    let messages = std::fs::read_to_string(dir.join("messages.log")).unwrap_or_default();
    assert_eq!(run.code, 0, "SIPp failed: {}\nlisten: {}\nmessages: {messages}", run.log, listener.stderr());
    assert_eq!((run.successful, run.failed), (1, 0), "{}", run.log);

    // One call, over: listen exits 0 by itself.
    let listen_code = listener.wait(Duration::from_secs(30));
    assert_eq!(listen_code, 0, "listen: {}", listener.stderr());
    let calls = by_call(&listener.json_lines());
    assert_eq!(calls.len(), 1, "{calls:?}");
    let events = calls.values().next().unwrap();
    assert_eq!(names(events), ["incoming", "accepted", "bye", "terminated"], "{events:?}");
    assert_eq!(events.last().unwrap()["cause"], "Bye", "{events:?}");

    // Stop the capture (SIGTERM: tshark closes the file), at most its duration.
    tshark.terminate();
    let tshark_code = tshark.wait(Duration::from_secs(u64::from(CAPTURE_SECS) + 20));
    let bytes = std::fs::read(&capture).unwrap_or_else(|e| panic!("no capture ({e}); tshark: {}", tshark.stderr()));
    assert!(matches!(tshark_code, 0 | 143 | -1), "tshark exited {tshark_code}: {}", tshark.stderr());
    let datagrams = read_pcap(&bytes);

    let sipact_port = answered_media_port(&messages)
        .unwrap_or_else(|| panic!("no m=audio line in the 200 to the INVITE: {messages}"));
    let localhost = [127, 0, 0, 1];
    let to_sipact: Vec<Rtp> = datagrams
        .iter()
        .filter(|d| d.src == (localhost, media) && d.dst == (localhost, sipact_port))
        .filter_map(parse_rtp)
        .collect();
    let from_sipact: Vec<Rtp> = datagrams
        .iter()
        .filter(|d| d.src == (localhost, sipact_port) && d.dst == (localhost, media))
        .filter_map(parse_rtp)
        .collect();
    let elsewhere: Vec<&Datagram> = datagrams
        .iter()
        .filter(|d| d.dst == (localhost, media) && d.src != (localhost, sipact_port) && parse_rtp(d).is_some())
        .collect();

    // SIPp played the pcap to the answered port; sipact echoed from that
    // same port (symmetric RTP), and from nowhere else.
    assert!(
        to_sipact.len() >= 140,
        "SIPp sent {} RTP packets to sipact's port {sipact_port} (play_pcap_audio sends over a raw socket: \
         root or CAP_NET_RAW; so does tshark's capture); SIPp: {}\ntshark: {}",
        to_sipact.len(),
        run.log,
        tshark.stderr()
    );
    assert!(
        from_sipact.len() >= 120,
        "sipact sent {} RTP packets back from its port {sipact_port} to {media}; {} from other ports",
        from_sipact.len(),
        elsewhere.len()
    );
    assert!(elsewhere.is_empty(), "RTP to SIPp's media port from other ports than {sipact_port}: {elsewhere:?}");
    check_stream("SIPp -> sipact", &to_sipact);
    check_stream("sipact -> SIPp", &from_sipact);

    // The echo: decode what sipact sent, keep the packets that carry sound.
    let frames: Vec<Vec<f64>> = from_sipact
        .iter()
        .map(|p| p.payload.iter().map(|&b| f64::from(ulaw_decode(b))).collect::<Vec<f64>>())
        .collect();
    let loud: Vec<usize> = (0..frames.len())
        .filter(|&i| frames[i].iter().map(|x| x * x).sum::<f64>() / FRAME as f64 > 1000.0 * 1000.0)
        .collect();
    let samples: Vec<f64> = loud.iter().flat_map(|&i| frames[i].iter().copied()).collect();
    let at_tone = goertzel_share(&samples, TONE_HZ);
    let at_1000 = goertzel_share(&samples, 1000.0);
    let ratio = at_tone / at_1000.max(1e-12);

    // The timeline: the answer, SIPp's first packet, the BYE, sipact's RTCP.
    let sip_at = |start: &str| {
        datagrams
            .iter()
            .find(|d| (d.src.1 == sip_port || d.dst.1 == sip_port) && d.payload.starts_with(start.as_bytes()))
            .map(|d| d.time)
    };
    let t_ok = sip_at("SIP/2.0 200").expect("no 200 captured");
    let t_bye = sip_at("BYE ").expect("no BYE captured");
    let rtcp: Vec<&Datagram> =
        datagrams.iter().filter(|d| d.src.0 == localhost && d.dst == (localhost, media + 1)).collect();
    let rtcp_bye = rtcp.iter().filter(|d| rtcp_has_bye(&d.payload)).count();
    let after_bye = from_sipact.iter().filter(|p| p.time > t_bye).count();
    eprintln!(
        "sipact's RTP port {sipact_port}; timeline (ms after the 200): sipact's first RTP {:.0}, SIPp's first \
         RTP {:.0}, SIPp's last RTP {:.0}, BYE {:.0}, sipact's last RTP {:.0} ({after_bye} RTP packets after the \
         BYE); sipact's RTCP to {}: {} packets ({rtcp_bye} with BYE) from port(s) {:?}",
        (from_sipact[0].time - t_ok) * 1000.0,
        (to_sipact[0].time - t_ok) * 1000.0,
        (to_sipact.last().unwrap().time - t_ok) * 1000.0,
        (t_bye - t_ok) * 1000.0,
        (from_sipact.last().unwrap().time - t_ok) * 1000.0,
        media + 1,
        rtcp.len(),
        rtcp.iter().map(|d| d.src.1).collect::<std::collections::BTreeSet<u16>>(),
    );

    // The media ended with the call.
    let late = from_sipact.iter().filter(|p| p.time > t_bye + 0.2).count();
    assert_eq!(late, 0, "sipact still sent {late} RTP packets more than 200 ms after the BYE");

    // How faithful the echo is: the echoed payloads against the played ones.
    let echoed: Vec<&[u8]> = loud.iter().map(|&i| from_sipact[i].payload.as_slice()).collect();
    let identical = echoed.iter().zip(&sent_payloads).filter(|(a, b)| **a == b.as_slice()).count();
    let span = |p: &[Rtp]| p.last().map_or(0.0, |l| l.time - p[0].time);
    let pace = |p: &[Rtp]| span(p) / (p.len().max(2) - 1) as f64 * 1000.0;
    let first_echo = loud.first().map_or(f64::NAN, |&i| (from_sipact[i].time - to_sipact[0].time) * 1000.0);
    eprintln!(
        "RTP on the wire: SIPp -> sipact {} packets over {:.2} s ({:.1} ms apart); sipact -> SIPp {} packets over \
         {:.2} s ({:.1} ms apart), {} with the tone ({} identical to the played ones, in order), first echo \
         {:.0} ms after the first packet; Goertzel share of the echoed audio: {:.4} at 440 Hz, {:.2e} at \
         1000 Hz, ratio {:.3e}",
        to_sipact.len(),
        span(&to_sipact),
        pace(&to_sipact),
        from_sipact.len(),
        span(&from_sipact),
        pace(&from_sipact),
        loud.len(),
        identical,
        first_echo,
        at_tone,
        at_1000,
        ratio
    );
    assert!(loud.len() >= 120, "only {} of sipact's {} packets carry sound", loud.len(), from_sipact.len());
    assert!(at_tone > 0.8, "440 Hz holds only {at_tone:.3} of the echoed energy");
    assert!(ratio > 1000.0, "440 Hz does not dominate the echo: {at_tone} at 440 Hz, {at_1000} at 1000 Hz");
}

#[test]
fn mu_law_round_trip_and_goertzel() {
    for s in [-32768i16, -8000, -1000, -100, -1, 0, 1, 100, 1000, 8000, 32767] {
        let back = ulaw_decode(ulaw_encode(s));
        let err = (i32::from(back) - i32::from(s)).abs();
        assert!(err <= (i32::from(s).abs() / 16).max(8) + 200, "{s} -> {back}");
    }
    assert_eq!(ulaw_decode(0xff), 0);
    assert_eq!(ulaw_encode(0), 0xff);
    for b in 0..=255u8 {
        let s = ulaw_decode(b);
        if b != 0x7f {
            assert_eq!(ulaw_encode(s), b, "{b:#04x} -> {s}");
        }
    }
    let tone: Vec<f64> =
        (0..800).map(|k| (2.0 * std::f64::consts::PI * TONE_HZ * f64::from(k) / f64::from(RATE)).sin()).collect();
    assert!(goertzel_share(&tone, TONE_HZ) > 0.95);
    assert!(goertzel_share(&tone, 1000.0) < 0.01);
}
