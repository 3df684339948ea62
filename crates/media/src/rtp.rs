//! Plain RTP/AVP (RFC 3550, RFC 3551), sans-IO.
//!
//! - [`RtpPacket`] and [`RtcpPacket`]: parse and build, with CSRCs, header
//!   extensions and padding; parsers never panic on any input.
//! - [`G711`]: μ-law (PCMU) and A-law (PCMA) encode and decode.
//! - [`RtpSession`]: one audio stream. The caller hands it 20 ms PCM
//!   frames ([`RtpSession::send_audio`]), received datagrams
//!   ([`RtpSession::handle_input`]) and the time; it hands back datagrams
//!   ([`RtpSession::poll_transmit`]), [`RtpEvent`]s and its next deadline
//!   ([`RtpSession::poll_timeout`]). It keeps sequence numbers, timestamps
//!   and the SSRC, receive statistics (loss, jitter), sends RTCP sender or
//!   receiver reports at the RFC 3550 §6.2 interval, sends and receives
//!   RFC 4733 telephone-events, latches the peer's address from its first
//!   packet (symmetric RTP, RFC 4961), and reports an RTP timeout.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::sdp::Direction;

/// Why a packet could not be parsed or an operation not done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpError {
    /// Fewer bytes than the header needs.
    #[error("packet too short: {len} bytes, need {need}")]
    TooShort {
        /// Bytes available.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// The version field is not 2.
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    /// Padding larger than the packet.
    #[error("invalid padding length {0}")]
    BadPadding(u8),
    /// An RTCP length field that overruns the datagram.
    #[error("RTCP length {words} words overruns the datagram")]
    BadLength {
        /// The length field.
        words: u16,
    },
    /// A character that is not a DTMF digit.
    #[error("{0:?} is not a DTMF digit")]
    InvalidDigit(char),
    /// telephone-event was not negotiated.
    #[error("telephone-event not negotiated")]
    NoTelephoneEvent,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([*b.get(at)?, *b.get(at + 1)?, *b.get(at + 2)?, *b.get(at + 3)?]))
}

fn short(len: usize, need: usize) -> RtpError {
    RtpError::TooShort { len, need }
}

/// An RTP header extension (RFC 3550 §5.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpExtension {
    /// The profile-defined 16 bits.
    pub profile: u16,
    /// The extension data; its length is a multiple of 4 (padded when built).
    pub data: Bytes,
}

/// An RTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    /// Marker bit.
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: u32,
    /// Contributing sources (at most 15).
    pub csrc: Vec<u32>,
    /// Header extension.
    pub extension: Option<RtpExtension>,
    /// Payload (without padding).
    pub payload: Bytes,
    /// Padding octets including the count octet (0 for none).
    pub padding: u8,
}

impl RtpPacket {
    /// A packet with no CSRCs, extension or padding.
    pub fn new(payload_type: u8, sequence: u16, timestamp: u32, ssrc: u32, payload: impl Into<Bytes>) -> Self {
        RtpPacket {
            marker: false,
            payload_type: payload_type & 0x7f,
            sequence,
            timestamp,
            ssrc,
            csrc: Vec::new(),
            extension: None,
            payload: payload.into(),
            padding: 0,
        }
    }

    /// Parses a datagram.
    pub fn parse(buf: &[u8]) -> Result<Self, RtpError> {
        let b0 = *buf.first().ok_or(short(buf.len(), 12))?;
        if buf.len() < 12 {
            return Err(short(buf.len(), 12));
        }
        if b0 >> 6 != 2 {
            return Err(RtpError::BadVersion(b0 >> 6));
        }
        let b1 = *buf.get(1).ok_or(short(buf.len(), 12))?;
        let cc = usize::from(b0 & 0x0f);
        let mut at = 12;
        let mut csrc = Vec::with_capacity(cc);
        for _ in 0..cc {
            csrc.push(be32(buf, at).ok_or(short(buf.len(), at + 4))?);
            at += 4;
        }
        let extension = if b0 & 0x10 != 0 {
            let profile = be16(buf, at).ok_or(short(buf.len(), at + 4))?;
            let words = usize::from(be16(buf, at + 2).ok_or(short(buf.len(), at + 4))?);
            let start = at + 4;
            let end = start + words * 4;
            let data = buf.get(start..end).ok_or(short(buf.len(), end))?;
            at = end;
            Some(RtpExtension { profile, data: Bytes::copy_from_slice(data) })
        } else {
            None
        };
        let mut end = buf.len();
        let padding = if b0 & 0x20 != 0 {
            let p = *buf.last().ok_or(short(buf.len(), at + 1))?;
            if p == 0 || usize::from(p) > end - at {
                return Err(RtpError::BadPadding(p));
            }
            end -= usize::from(p);
            p
        } else {
            0
        };
        let payload = buf.get(at..end).ok_or(short(buf.len(), at))?;
        Ok(RtpPacket {
            marker: b1 & 0x80 != 0,
            payload_type: b1 & 0x7f,
            sequence: be16(buf, 2).unwrap_or(0),
            timestamp: be32(buf, 4).unwrap_or(0),
            ssrc: be32(buf, 8).unwrap_or(0),
            csrc,
            extension,
            payload: Bytes::copy_from_slice(payload),
            padding,
        })
    }

    /// Appends the packet to `out`. CSRCs beyond 15 are dropped; extension
    /// data is zero-padded to 32 bits.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let cc = self.csrc.len().min(15);
        let mut b0 = 0x80 | cc as u8;
        if self.extension.is_some() {
            b0 |= 0x10;
        }
        if self.padding > 0 {
            b0 |= 0x20;
        }
        out.push(b0);
        out.push((u8::from(self.marker) << 7) | (self.payload_type & 0x7f));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for c in self.csrc.iter().take(cc) {
            out.extend_from_slice(&c.to_be_bytes());
        }
        if let Some(x) = &self.extension {
            let words = x.data.len().div_ceil(4).min(usize::from(u16::MAX));
            out.extend_from_slice(&x.profile.to_be_bytes());
            out.extend_from_slice(&(words as u16).to_be_bytes());
            let data = x.data.get(..words * 4).unwrap_or(&x.data);
            out.extend_from_slice(data);
            out.resize(out.len() + (words * 4 - data.len()), 0);
        }
        out.extend_from_slice(&self.payload);
        if self.padding > 0 {
            out.resize(out.len() + usize::from(self.padding) - 1, 0);
            out.push(self.padding);
        }
    }

    /// The packet as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(12 + self.payload.len());
        self.write_to(&mut v);
        v
    }
}

/// Whether a datagram on a multiplexed port is RTCP (RFC 5761 §4: second
/// octet 192..=223).
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 8 && matches!(buf.get(1), Some(192..=223))
}

/// Whether a datagram on a port shared with STUN and DTLS is RTP or RTCP
/// (RFC 7983 §7: first octet 128..=191).
pub fn is_rtp_or_rtcp(buf: &[u8]) -> bool {
    buf.first().is_some_and(|b| (128..=191).contains(b))
}

/// An RTCP reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source reported on.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_sequence: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the last SR's NTP timestamp (0 if none).
    pub last_sr: u32,
    /// Delay since the last SR in 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn parse(b: &[u8], at: usize) -> Option<Self> {
        let lost = be32(b, at + 4)?;
        let cum = (lost & 0x00ff_ffff) as i32;
        let cumulative_lost = if cum & 0x0080_0000 != 0 { cum - 0x0100_0000 } else { cum };
        Some(ReportBlock {
            ssrc: be32(b, at)?,
            fraction_lost: (lost >> 24) as u8,
            cumulative_lost,
            highest_sequence: be32(b, at + 8)?,
            jitter: be32(b, at + 12)?,
            last_sr: be32(b, at + 16)?,
            delay_since_last_sr: be32(b, at + 20)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        let cum = self.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0x00ff_ffff;
        out.extend_from_slice(&((u32::from(self.fraction_lost) << 24) | cum).to_be_bytes());
        out.extend_from_slice(&self.highest_sequence.to_be_bytes());
        out.extend_from_slice(&self.jitter.to_be_bytes());
        out.extend_from_slice(&self.last_sr.to_be_bytes());
        out.extend_from_slice(&self.delay_since_last_sr.to_be_bytes());
    }
}

/// An RTCP packet (one element of a compound packet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    /// SR (200).
    SenderReport {
        /// Sender SSRC.
        ssrc: u32,
        /// 64-bit NTP timestamp.
        ntp: u64,
        /// RTP timestamp matching `ntp`.
        rtp_timestamp: u32,
        /// Packets sent.
        packet_count: u32,
        /// Payload octets sent.
        octet_count: u32,
        /// Reception reports (at most 31).
        reports: Vec<ReportBlock>,
    },
    /// RR (201).
    ReceiverReport {
        /// Reporter SSRC.
        ssrc: u32,
        /// Reception reports (at most 31).
        reports: Vec<ReportBlock>,
    },
    /// SDES (202): the CNAME of each chunk (other items are skipped).
    SourceDescription(Vec<(u32, String)>),
    /// BYE (203).
    Goodbye {
        /// Sources leaving.
        ssrcs: Vec<u32>,
        /// Reason, if given.
        reason: Option<String>,
    },
    /// Any other packet type, kept raw (body after the 4-octet header).
    Other {
        /// Packet type.
        packet_type: u8,
        /// The 5-bit count field.
        count: u8,
        /// Body.
        body: Bytes,
    },
}

fn pad4(out: &mut Vec<u8>, start: usize) {
    while !(out.len() - start).is_multiple_of(4) {
        out.push(0);
    }
}

impl RtcpPacket {
    /// Parses a compound RTCP datagram.
    pub fn parse_compound(buf: &[u8]) -> Result<Vec<RtcpPacket>, RtpError> {
        let mut out = Vec::new();
        let mut at = 0;
        if buf.len() < 4 {
            return Err(short(buf.len(), 4));
        }
        while at < buf.len() {
            let b0 = *buf.get(at).ok_or(short(buf.len(), at + 4))?;
            if b0 >> 6 != 2 {
                return Err(RtpError::BadVersion(b0 >> 6));
            }
            let pt = *buf.get(at + 1).ok_or(short(buf.len(), at + 4))?;
            let words = be16(buf, at + 2).ok_or(short(buf.len(), at + 4))?;
            let end = at + 4 + usize::from(words) * 4;
            let pkt = buf.get(at..end).ok_or(RtpError::BadLength { words })?;
            let mut body_end = pkt.len();
            if b0 & 0x20 != 0 {
                let p = *pkt.last().ok_or(RtpError::BadPadding(0))?;
                if p == 0 || usize::from(p) > pkt.len() - 4 {
                    return Err(RtpError::BadPadding(p));
                }
                body_end -= usize::from(p);
            }
            let pkt = pkt.get(..body_end).ok_or(RtpError::BadLength { words })?;
            out.push(Self::parse_one(b0 & 0x1f, pt, pkt)?);
            at = end;
        }
        Ok(out)
    }

    fn parse_one(count: u8, pt: u8, p: &[u8]) -> Result<RtcpPacket, RtpError> {
        let need = |n: usize| short(p.len(), n);
        let blocks = |from: usize| -> Result<Vec<ReportBlock>, RtpError> {
            (0..usize::from(count))
                .map(|i| ReportBlock::parse(p, from + i * 24).ok_or(need(from + (i + 1) * 24)))
                .collect()
        };
        Ok(match pt {
            200 => {
                let ntp_hi = be32(p, 8).ok_or(need(28))?;
                let ntp_lo = be32(p, 12).ok_or(need(28))?;
                RtcpPacket::SenderReport {
                    ssrc: be32(p, 4).ok_or(need(28))?,
                    ntp: (u64::from(ntp_hi) << 32) | u64::from(ntp_lo),
                    rtp_timestamp: be32(p, 16).ok_or(need(28))?,
                    packet_count: be32(p, 20).ok_or(need(28))?,
                    octet_count: be32(p, 24).ok_or(need(28))?,
                    reports: blocks(28)?,
                }
            }
            201 => RtcpPacket::ReceiverReport { ssrc: be32(p, 4).ok_or(need(8))?, reports: blocks(8)? },
            202 => {
                let mut chunks = Vec::new();
                let mut at = 4;
                for _ in 0..count {
                    let ssrc = be32(p, at).ok_or(need(at + 4))?;
                    at += 4;
                    let mut cname = String::new();
                    loop {
                        let item = *p.get(at).ok_or(need(at + 1))?;
                        if item == 0 {
                            at += 1;
                            break;
                        }
                        let len = usize::from(*p.get(at + 1).ok_or(need(at + 2))?);
                        let text = p.get(at + 2..at + 2 + len).ok_or(need(at + 2 + len))?;
                        if item == 1 {
                            cname = String::from_utf8_lossy(text).into_owned();
                        }
                        at += 2 + len;
                    }
                    at = at.div_ceil(4) * 4;
                    chunks.push((ssrc, cname));
                }
                RtcpPacket::SourceDescription(chunks)
            }
            203 => {
                let mut ssrcs = Vec::new();
                for i in 0..usize::from(count) {
                    ssrcs.push(be32(p, 4 + i * 4).ok_or(need(8 + i * 4))?);
                }
                let at = 4 + usize::from(count) * 4;
                let reason = match p.get(at) {
                    Some(&len) if len > 0 => {
                        let text = p.get(at + 1..at + 1 + usize::from(len)).ok_or(need(at + 1 + usize::from(len)))?;
                        Some(String::from_utf8_lossy(text).into_owned())
                    }
                    _ => None,
                };
                RtcpPacket::Goodbye { ssrcs, reason }
            }
            _ => RtcpPacket::Other {
                packet_type: pt,
                count,
                body: Bytes::copy_from_slice(p.get(4..).unwrap_or_default()),
            },
        })
    }

    /// Appends this packet to `out` (a compound is several packets appended).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let (count, pt) = match self {
            RtcpPacket::SenderReport { reports, .. } => (reports.len().min(31) as u8, 200),
            RtcpPacket::ReceiverReport { reports, .. } => (reports.len().min(31) as u8, 201),
            RtcpPacket::SourceDescription(c) => (c.len().min(31) as u8, 202),
            RtcpPacket::Goodbye { ssrcs, .. } => (ssrcs.len().min(31) as u8, 203),
            RtcpPacket::Other { packet_type, count, .. } => (count & 0x1f, *packet_type),
        };
        out.extend_from_slice(&[0x80 | count, pt, 0, 0]);
        match self {
            RtcpPacket::SenderReport { ssrc, ntp, rtp_timestamp, packet_count, octet_count, reports } => {
                out.extend_from_slice(&ssrc.to_be_bytes());
                out.extend_from_slice(&ntp.to_be_bytes());
                out.extend_from_slice(&rtp_timestamp.to_be_bytes());
                out.extend_from_slice(&packet_count.to_be_bytes());
                out.extend_from_slice(&octet_count.to_be_bytes());
                reports.iter().take(31).for_each(|r| r.write(out));
            }
            RtcpPacket::ReceiverReport { ssrc, reports } => {
                out.extend_from_slice(&ssrc.to_be_bytes());
                reports.iter().take(31).for_each(|r| r.write(out));
            }
            RtcpPacket::SourceDescription(chunks) => {
                for (ssrc, cname) in chunks.iter().take(31) {
                    let chunk = out.len();
                    out.extend_from_slice(&ssrc.to_be_bytes());
                    let text = cname.as_bytes();
                    let text = text.get(..255).unwrap_or(text);
                    out.push(1);
                    out.push(text.len() as u8);
                    out.extend_from_slice(text);
                    out.push(0);
                    pad4(out, chunk);
                }
            }
            RtcpPacket::Goodbye { ssrcs, reason } => {
                ssrcs.iter().take(31).for_each(|s| out.extend_from_slice(&s.to_be_bytes()));
                if let Some(r) = reason {
                    let text = r.as_bytes();
                    let text = text.get(..255).unwrap_or(text);
                    out.push(text.len() as u8);
                    out.extend_from_slice(text);
                }
                pad4(out, start);
            }
            RtcpPacket::Other { body, .. } => {
                out.extend_from_slice(body);
                pad4(out, start);
            }
        }
        let words = ((out.len() - start) / 4).saturating_sub(1).min(usize::from(u16::MAX)) as u16;
        if let Some(len) = out.get_mut(start + 2..start + 4) {
            len.copy_from_slice(&words.to_be_bytes());
        }
    }

    /// Builds a compound packet.
    pub fn compound_to_bytes(packets: &[RtcpPacket]) -> Vec<u8> {
        let mut out = Vec::new();
        packets.iter().for_each(|p| p.write_to(&mut out));
        out
    }
}

// ---------------------------------------------------------------- G.711

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

/// Encodes one sample to μ-law (G.711).
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut pcm = i32::from(sample);
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    pcm = pcm.min(ULAW_CLIP) + ULAW_BIAS;
    let top = ((pcm >> 7) & 0xff) as u8;
    let exponent = if top == 0 { 0 } else { 7 - top.leading_zeros() as i32 };
    let mantissa = (pcm >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// Decodes one μ-law byte.
pub fn ulaw_decode(byte: u8) -> i16 {
    let u = !byte;
    let exponent = i32::from((u >> 4) & 0x07);
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    (if u & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

/// Encodes one sample to A-law (G.711).
pub fn alaw_encode(sample: i16) -> u8 {
    let mut pcm = i32::from(sample) >> 3;
    let mask = if pcm >= 0 {
        0xd5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    const SEG_END: [i32; 8] = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
    let Some(seg) = SEG_END.iter().position(|&e| pcm <= e) else {
        return 0x7f ^ mask;
    };
    let mut aval = (seg as i32) << 4;
    aval |= if seg < 2 { (pcm >> 1) & 0x0f } else { (pcm >> seg) & 0x0f };
    (aval as u8) ^ mask
}

/// Decodes one A-law byte.
pub fn alaw_decode(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let mut t = i32::from(a & 0x0f) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// The G.711 laws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum G711 {
    /// μ-law, PCMU, static payload type 0.
    Pcmu,
    /// A-law, PCMA, static payload type 8.
    Pcma,
}

impl G711 {
    /// The law for an encoding name.
    pub fn from_name(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("PCMU") {
            Some(G711::Pcmu)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(G711::Pcma)
        } else {
            None
        }
    }
    /// The static payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            G711::Pcmu => 0,
            G711::Pcma => 8,
        }
    }
    /// Encodes samples.
    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        match self {
            G711::Pcmu => samples.iter().map(|&s| ulaw_encode(s)).collect(),
            G711::Pcma => samples.iter().map(|&s| alaw_encode(s)).collect(),
        }
    }
    /// Decodes bytes.
    pub fn decode(self, bytes: &[u8]) -> Vec<i16> {
        match self {
            G711::Pcmu => bytes.iter().map(|&b| ulaw_decode(b)).collect(),
            G711::Pcma => bytes.iter().map(|&b| alaw_decode(b)).collect(),
        }
    }
}

// ---------------------------------------------------------------- RFC 4733

/// The RFC 4733 event code of a DTMF digit (`0-9`, `*`, `#`, `A-D`).
pub fn dtmf_event(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        'a'..='d' => Some(digit as u8 - b'a' + 12),
        _ => None,
    }
}

/// The DTMF digit of an RFC 4733 event code.
pub fn dtmf_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// A telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code.
    pub event: u8,
    /// End bit.
    pub end: bool,
    /// Volume in -dBm0 (0..=63).
    pub volume: u8,
    /// Duration in timestamp units since the event began.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first 4 octets of a payload.
    pub fn parse(p: &[u8]) -> Option<Self> {
        let b1 = *p.get(1)?;
        Some(TelephoneEvent { event: *p.first()?, end: b1 & 0x80 != 0, volume: b1 & 0x3f, duration: be16(p, 2)? })
    }
    /// The 4-octet payload.
    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [self.event, (u8::from(self.end) << 7) | (self.volume & 0x3f), d[0], d[1]]
    }
}

// ---------------------------------------------------------------- session

/// Which socket a datagram belongs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    /// RTP.
    Rtp,
    /// RTCP.
    Rtcp,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub destination: SocketAddr,
    /// RTP or RTCP socket (the same socket when muxed).
    pub component: Component,
    /// The datagram.
    pub data: Vec<u8>,
}

/// What an [`RtpSession`] reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RtpEvent {
    /// Decoded audio from one packet (8 kHz mono).
    Audio {
        /// RTP timestamp.
        timestamp: u32,
        /// RTP sequence number.
        sequence: u16,
        /// Samples.
        samples: Vec<i16>,
    },
    /// A DTMF digit, reported once per event (RFC 4733).
    Dtmf {
        /// The digit.
        digit: char,
        /// Duration in timestamp units.
        duration: u16,
    },
    /// The peer's address, learned from its first packet (symmetric RTP).
    RemoteAddress {
        /// RTP or RTCP.
        component: Component,
        /// The address.
        address: SocketAddr,
    },
    /// No RTP or RTCP for the configured timeout.
    Timeout,
    /// An RTCP packet from the peer (SR, RR, BYE...).
    Rtcp(RtcpPacket),
    /// The peer sent an RTCP BYE.
    Bye {
        /// The sources that left.
        ssrcs: Vec<u32>,
    },
}

/// Settings of an [`RtpSession`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpConfig {
    /// Our SSRC (pick it at random).
    pub ssrc: u32,
    /// Our RTCP CNAME.
    pub cname: String,
    /// The G.711 law we send.
    pub law: G711,
    /// The payload type we send it with.
    pub payload_type: u8,
    /// The telephone-event payload type, if negotiated.
    pub telephone_event: Option<u8>,
    /// Samples per frame (160 = 20 ms at 8 kHz).
    pub samples_per_frame: u32,
    /// First sequence number (random per RFC 3550).
    pub initial_sequence: u16,
    /// First timestamp (random per RFC 3550).
    pub initial_timestamp: u32,
    /// The deterministic RTCP interval (RFC 3550 §6.2: 5 s minimum).
    pub rtcp_interval: Duration,
    /// Report an [`RtpEvent::Timeout`] after this long without packets.
    pub rtp_timeout: Option<Duration>,
    /// RTCP on the RTP port (RFC 5761).
    pub rtcp_mux: bool,
    /// Send to the address packets come from (RFC 4961).
    pub symmetric: bool,
    /// Wall-clock time (since the UNIX epoch) at the first `now` the session
    /// sees; SR NTP timestamps are derived from it. Zero gives relative NTP time.
    pub wallclock: Duration,
    /// Seed of the RTCP interval randomisation.
    pub seed: u64,
    /// Default DTMF tone length.
    pub dtmf_duration: Duration,
    /// Silence between DTMF tones.
    pub dtmf_gap: Duration,
}

impl RtpConfig {
    /// PCMU at 20 ms with telephone-event 101, RTCP every 5 s.
    pub fn pcmu(ssrc: u32) -> Self {
        RtpConfig {
            ssrc,
            cname: format!("sipact-{ssrc:08x}"),
            law: G711::Pcmu,
            payload_type: 0,
            telephone_event: Some(101),
            samples_per_frame: 160,
            initial_sequence: (ssrc >> 7) as u16,
            initial_timestamp: ssrc.rotate_left(13),
            rtcp_interval: Duration::from_secs(5),
            rtp_timeout: None,
            rtcp_mux: false,
            symmetric: true,
            wallclock: Duration::ZERO,
            seed: u64::from(ssrc) | 1,
            dtmf_duration: Duration::from_millis(100),
            dtmf_gap: Duration::from_millis(60),
        }
    }
    /// PCMA at 20 ms with telephone-event 101.
    pub fn pcma(ssrc: u32) -> Self {
        RtpConfig { law: G711::Pcma, payload_type: 8, ..RtpConfig::pcmu(ssrc) }
    }
}

const CLOCK: u64 = 8000;
const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;
/// RFC 3550 §6.3.1: the compensation for timer reconsideration, e − 3/2.
const COMPENSATION: f64 = 1.218_281_828_459_045;

/// Receive statistics of the peer's source (RFC 3550 Appendix A.1, A.3, A.8).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReceiveStats {
    /// The peer's SSRC.
    pub ssrc: Option<u32>,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    bad_seq: u32,
    /// Packets received (including duplicates).
    pub received: u64,
    expected_prior: u64,
    received_prior: u64,
    transit: Option<i64>,
    jitter: f64,
    last_sr: u32,
    last_sr_at: Option<Instant>,
}

impl ReceiveStats {
    fn init(&mut self, ssrc: u32, seq: u16) {
        *self = ReceiveStats { ssrc: Some(ssrc), ..ReceiveStats::default() };
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = 1 << 17;
    }

    /// RFC 3550 A.1 `update_seq`; false for a packet to drop.
    fn update(&mut self, seq: u16) -> bool {
        let udelta = seq.wrapping_sub(self.max_seq);
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(1 << 16);
            }
            self.max_seq = seq;
        } else if udelta <= u16::MAX - MAX_MISORDER {
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets after a jump: the source restarted.
                let ssrc = self.ssrc.unwrap_or(0);
                self.init(ssrc, seq);
            } else {
                self.bad_seq = u32::from(seq.wrapping_add(1));
                return false;
            }
        }
        // else: duplicate or reordered packet, counted.
        self.received += 1;
        true
    }

    /// The extended highest sequence number received.
    pub fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }
    /// Packets expected from the first to the highest sequence number.
    pub fn expected(&self) -> u64 {
        u64::from(self.extended_max()).saturating_sub(u64::from(self.base_seq)) + 1
    }
    /// Cumulative packets lost (negative with duplicates).
    pub fn lost(&self) -> i64 {
        if self.ssrc.is_none() { 0 } else { self.expected() as i64 - self.received as i64 }
    }
    /// Interarrival jitter in timestamp units.
    pub fn jitter(&self) -> u32 {
        self.jitter as u32
    }

    fn block(&mut self, now: Instant) -> Option<ReportBlock> {
        let ssrc = self.ssrc?;
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let dlsr = self.last_sr_at.map(|at| (now.saturating_duration_since(at).as_secs_f64() * 65536.0) as u32);
        Some(ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: self.lost().clamp(-0x80_0000, 0x7f_ffff) as i32,
            highest_sequence: self.extended_max(),
            jitter: self.jitter(),
            last_sr: self.last_sr,
            delay_since_last_sr: if self.last_sr == 0 { 0 } else { dlsr.unwrap_or(0) },
        })
    }
}

/// Counters of what we sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendStats {
    /// RTP packets sent.
    pub packets: u32,
    /// RTP payload octets sent.
    pub octets: u32,
    /// RTCP compound packets sent.
    pub rtcp_packets: u32,
    /// Telephone-event packets sent.
    pub dtmf_packets: u32,
}

#[derive(Debug, Clone)]
struct ActiveEvent {
    event: u8,
    start_ts: u32,
    total: u16,
    elapsed: u16,
    ends_sent: u8,
}

#[derive(Debug, Clone)]
struct RxEvent {
    timestamp: u32,
    event: u8,
    duration: u16,
}

/// One plain RTP audio stream, sans-IO. See the [module docs](self).
#[derive(Debug)]
pub struct RtpSession {
    config: RtpConfig,
    direction: Direction,
    epoch: Option<Instant>,
    sequence: u16,
    timestamp: u32,
    last_sent: Option<(Instant, u32)>,
    sent_since_report: bool,
    send: SendStats,
    recv: ReceiveStats,
    remote_rtp: Option<SocketAddr>,
    remote_rtcp: Option<SocketAddr>,
    learned_rtp: Option<SocketAddr>,
    learned_rtcp: Option<SocketAddr>,
    dtmf_queue: VecDeque<(u8, u16)>,
    dtmf_active: Option<ActiveEvent>,
    dtmf_gap_left: u32,
    rx_event: Option<RxEvent>,
    last_reported_event: Option<u32>,
    next_rtcp: Option<Instant>,
    last_rx: Option<Instant>,
    timed_out: bool,
    /// The direction started receiving again: the RTP timeout counts from
    /// the next `now` seen.
    rx_restart: bool,
    rng: u64,
    rtt: Option<Duration>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<RtpEvent>,
    closed: bool,
}

impl RtpSession {
    /// A session; the clock starts at the first `now` passed in.
    pub fn new(config: RtpConfig) -> Self {
        RtpSession {
            sequence: config.initial_sequence,
            timestamp: config.initial_timestamp,
            rng: config.seed | 1,
            config,
            direction: Direction::SendRecv,
            epoch: None,
            last_sent: None,
            sent_since_report: false,
            send: SendStats::default(),
            recv: ReceiveStats::default(),
            remote_rtp: None,
            remote_rtcp: None,
            learned_rtp: None,
            learned_rtcp: None,
            dtmf_queue: VecDeque::new(),
            dtmf_active: None,
            dtmf_gap_left: 0,
            rx_event: None,
            last_reported_event: None,
            next_rtcp: None,
            last_rx: None,
            timed_out: false,
            rx_restart: false,
            rtt: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            closed: false,
        }
    }

    /// The settings.
    pub fn config(&self) -> &RtpConfig {
        &self.config
    }
    /// Changes the sending codec (after a re-negotiation).
    pub fn set_codec(&mut self, law: G711, payload_type: u8) {
        self.config.law = law;
        self.config.payload_type = payload_type;
    }
    /// Changes the telephone-event payload type.
    pub fn set_telephone_event(&mut self, payload_type: Option<u8>) {
        self.config.telephone_event = payload_type;
    }
    /// Sets the negotiated direction: audio and DTMF are sent only if it
    /// sends. The RTP timeout only runs while it receives: the peer owes
    /// us nothing when it is held or inactive, and the time without
    /// packets counts again from when receiving resumes.
    pub fn set_direction(&mut self, direction: Direction) {
        if !self.direction.receives() && direction.receives() {
            self.rx_restart = true;
        }
        self.direction = direction;
    }
    /// The negotiated direction.
    pub fn direction(&self) -> Direction {
        self.direction
    }
    /// Sets the signalled remote addresses (from SDP).
    pub fn set_remote(&mut self, rtp: Option<SocketAddr>, rtcp: Option<SocketAddr>) {
        self.remote_rtp = rtp;
        self.remote_rtcp = rtcp;
    }
    /// Where RTP goes: the learned address (symmetric RTP) or the signalled one.
    pub fn remote_rtp(&self) -> Option<SocketAddr> {
        if self.config.symmetric { self.learned_rtp.or(self.remote_rtp) } else { self.remote_rtp }
    }
    /// Where RTCP goes.
    pub fn remote_rtcp(&self) -> Option<SocketAddr> {
        if self.config.rtcp_mux {
            return self.remote_rtp();
        }
        let learned = if self.config.symmetric { self.learned_rtcp } else { None };
        learned.or(self.remote_rtcp).or_else(|| {
            let mut a = self.remote_rtp()?;
            a.set_port(a.port().checked_add(1)?);
            Some(a)
        })
    }
    /// The address the first RTP packet came from, if any.
    pub fn learned_address(&self) -> Option<SocketAddr> {
        self.learned_rtp
    }
    /// Receive statistics.
    pub fn receive_stats(&self) -> &ReceiveStats {
        &self.recv
    }
    /// Send counters.
    pub fn send_stats(&self) -> SendStats {
        self.send
    }
    /// Round-trip time from the peer's last report block about us.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }
    /// The next RTP timestamp.
    pub fn next_timestamp(&self) -> u32 {
        self.timestamp
    }
    /// Sets the silence between DTMF tones.
    pub fn set_dtmf_gap(&mut self, gap: Duration) {
        self.config.dtmf_gap = gap;
    }
    /// Whether a DTMF digit is being sent or queued.
    pub fn dtmf_pending(&self) -> bool {
        self.dtmf_active.is_some() || !self.dtmf_queue.is_empty()
    }

    fn start(&mut self, now: Instant) {
        if self.epoch.is_none() {
            self.epoch = Some(now);
            self.last_rx = Some(now);
            let first = self.config.rtcp_interval / 2;
            let d = self.randomize(first);
            self.next_rtcp = now.checked_add(d);
        }
        if self.rx_restart {
            self.rx_restart = false;
            self.last_rx = Some(now);
            self.timed_out = false;
        }
    }

    fn random(&mut self) -> f64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// RFC 3550 §6.3.1: the interval times a random factor in [0.5, 1.5), over e − 3/2.
    fn randomize(&mut self, t: Duration) -> Duration {
        let factor = 0.5 + self.random();
        Duration::try_from_secs_f64(t.as_secs_f64() * factor / COMPENSATION).unwrap_or(Duration::MAX)
    }

    fn ts_units(&self, now: Instant) -> u64 {
        let since = self.epoch.map(|e| now.saturating_duration_since(e)).unwrap_or_default();
        (since.as_nanos() * u128::from(CLOCK) / 1_000_000_000) as u64
    }

    fn ntp(&self, now: Instant) -> u64 {
        let since = self.epoch.map(|e| now.saturating_duration_since(e)).unwrap_or_default();
        let t = self.config.wallclock.saturating_add(since);
        let secs = t.as_secs().wrapping_add(2_208_988_800);
        let frac = (u64::from(t.subsec_nanos()) << 32) / 1_000_000_000;
        (secs << 32) | frac
    }

    /// Queues DTMF `digits` (RFC 4733), each `duration` long (the config's
    /// default if `None`, at least 40 ms), separated by the configured gap.
    pub fn send_dtmf(&mut self, digits: &str, duration: Option<Duration>) -> Result<(), RtpError> {
        if self.config.telephone_event.is_none() {
            return Err(RtpError::NoTelephoneEvent);
        }
        let d = duration.unwrap_or(self.config.dtmf_duration).max(Duration::from_millis(40));
        let units = (d.as_millis().saturating_mul(u128::from(CLOCK)) / 1000).min(u128::from(u16::MAX)) as u16;
        let events = digits
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ',')
            .map(|c| dtmf_event(c).ok_or(RtpError::InvalidDigit(c)))
            .collect::<Result<Vec<_>, _>>()?;
        self.dtmf_queue.extend(events.into_iter().map(|e| (e, units)));
        Ok(())
    }

    fn next_dtmf_packet(&mut self, ts: u32) -> Option<RtpPacket> {
        let pt = self.config.telephone_event?;
        let frame = self.config.samples_per_frame.min(u32::from(u16::MAX)) as u16;
        if self.dtmf_active.is_none() {
            if self.dtmf_gap_left > 0 {
                self.dtmf_gap_left = self.dtmf_gap_left.saturating_sub(u32::from(frame));
                return None;
            }
            let (event, total) = self.dtmf_queue.pop_front()?;
            self.dtmf_active = Some(ActiveEvent { event, start_ts: ts, total, elapsed: 0, ends_sent: 0 });
        }
        let a = self.dtmf_active.as_mut()?;
        let first = a.elapsed == 0 && a.ends_sent == 0;
        if a.elapsed < a.total {
            a.elapsed = a.elapsed.saturating_add(frame).min(a.total);
        }
        let end = a.elapsed >= a.total;
        if end {
            a.ends_sent += 1;
        }
        let payload = TelephoneEvent { event: a.event, end, volume: 10, duration: a.elapsed }.to_bytes();
        let mut pkt = RtpPacket::new(pt, 0, a.start_ts, self.config.ssrc, payload.to_vec());
        pkt.marker = first;
        if a.ends_sent >= 3 {
            self.dtmf_active = None;
            let gap = self.config.dtmf_gap.as_millis().saturating_mul(u128::from(CLOCK)) / 1000;
            self.dtmf_gap_left = gap.min(u128::from(u32::MAX)) as u32;
        }
        Some(pkt)
    }

    fn emit_rtp(&mut self, now: Instant, mut pkt: RtpPacket) {
        pkt.sequence = self.sequence;
        self.sequence = self.sequence.wrapping_add(1);
        self.send.packets = self.send.packets.wrapping_add(1);
        self.send.octets = self.send.octets.wrapping_add(pkt.payload.len() as u32);
        self.sent_since_report = true;
        self.last_sent = Some((now, self.timestamp));
        if let Some(dest) = self.remote_rtp() {
            self.transmits.push_back(Transmit { destination: dest, component: Component::Rtp, data: pkt.to_bytes() });
        }
    }

    /// Sends one frame of 8 kHz audio (normally 160 samples, 20 ms) taken at
    /// `now`. While a DTMF digit is playing, its telephone-event packet goes
    /// out instead (RFC 4733 §2.5.1.2). Nothing is sent unless the direction
    /// sends; the timestamp advances either way.
    pub fn send_audio(&mut self, now: Instant, samples: &[i16]) {
        self.start(now);
        if self.closed {
            return;
        }
        let ts = self.timestamp;
        let frame = if samples.is_empty() { self.config.samples_per_frame } else { samples.len() as u32 };
        if self.direction.sends() {
            if let Some(pkt) = self.next_dtmf_packet(ts) {
                self.send.dtmf_packets = self.send.dtmf_packets.wrapping_add(1);
                self.emit_rtp(now, pkt);
            } else {
                let payload = self.config.law.encode(samples);
                let mut pkt = RtpPacket::new(self.config.payload_type, 0, ts, self.config.ssrc, payload);
                pkt.marker = self.send.packets == 0;
                self.emit_rtp(now, pkt);
            }
        }
        self.timestamp = ts.wrapping_add(frame);
    }

    /// Handles a datagram received from `from` on the RTP socket (RTP, or
    /// RTCP when muxed) or on the RTCP socket. Invalid datagrams are dropped.
    pub fn handle_input(&mut self, now: Instant, from: SocketAddr, component: Component, data: &[u8]) {
        self.start(now);
        if self.closed {
            return;
        }
        if component == Component::Rtcp || is_rtcp(data) {
            self.handle_rtcp(now, from, component, data);
        } else if let Ok(pkt) = RtpPacket::parse(data) {
            self.handle_rtp(now, from, pkt);
        }
    }

    fn learn(&mut self, component: Component, from: SocketAddr) {
        let slot = match component {
            Component::Rtp => &mut self.learned_rtp,
            Component::Rtcp => &mut self.learned_rtcp,
        };
        if slot.is_none() {
            *slot = Some(from);
            self.events.push_back(RtpEvent::RemoteAddress { component, address: from });
        }
    }

    fn handle_rtp(&mut self, now: Instant, from: SocketAddr, pkt: RtpPacket) {
        if pkt.ssrc == self.config.ssrc {
            return; // our own packet looped back
        }
        self.learn(Component::Rtp, from);
        self.last_rx = Some(now);
        self.timed_out = false;
        if self.recv.ssrc != Some(pkt.ssrc) {
            self.recv.init(pkt.ssrc, pkt.sequence);
            self.recv.received = 1;
            self.rx_event = None;
            self.last_reported_event = None;
        } else if !self.recv.update(pkt.sequence) {
            return;
        }
        // RFC 3550 A.8 interarrival jitter.
        let arrival = self.ts_units(now) as i64;
        let transit = arrival - i64::from(pkt.timestamp);
        if let Some(prev) = self.recv.transit {
            let d = (transit - prev).unsigned_abs() as f64;
            // Timestamps wrap; ignore absurd jumps.
            if d < f64::from(u32::MAX / 2) {
                self.recv.jitter += (d - self.recv.jitter) / 16.0;
            }
        }
        self.recv.transit = Some(transit);

        if Some(pkt.payload_type) == self.config.telephone_event {
            self.handle_event(&pkt);
            return;
        }
        self.flush_event();
        let law = match pkt.payload_type {
            pt if pt == self.config.payload_type => Some(self.config.law),
            0 => Some(G711::Pcmu),
            8 => Some(G711::Pcma),
            _ => None,
        };
        if let Some(law) = law
            && self.direction.receives()
        {
            self.events.push_back(RtpEvent::Audio {
                timestamp: pkt.timestamp,
                sequence: pkt.sequence,
                samples: law.decode(&pkt.payload),
            });
        }
    }

    fn report_event(&mut self, ev: &RxEvent) {
        self.last_reported_event = Some(ev.timestamp);
        if let Some(digit) = dtmf_digit(ev.event) {
            self.events.push_back(RtpEvent::Dtmf { digit, duration: ev.duration });
        }
    }

    /// An event whose end packets were all lost is reported when something else arrives.
    fn flush_event(&mut self) {
        if let Some(ev) = self.rx_event.take() {
            self.report_event(&ev);
        }
    }

    fn handle_event(&mut self, pkt: &RtpPacket) {
        let Some(te) = TelephoneEvent::parse(&pkt.payload) else { return };
        if self.last_reported_event == Some(pkt.timestamp) {
            return; // end retransmission of a digit already reported
        }
        if self.rx_event.as_ref().is_some_and(|e| e.timestamp != pkt.timestamp) {
            self.flush_event();
        }
        let ev = RxEvent { timestamp: pkt.timestamp, event: te.event, duration: te.duration };
        if te.end {
            self.rx_event = None;
            self.report_event(&ev);
        } else {
            self.rx_event = Some(ev);
        }
    }

    fn handle_rtcp(&mut self, now: Instant, from: SocketAddr, component: Component, data: &[u8]) {
        let Ok(packets) = RtcpPacket::parse_compound(data) else { return };
        self.learn(component, from);
        self.last_rx = Some(now);
        self.timed_out = false;
        for p in packets {
            match &p {
                RtcpPacket::SenderReport { ntp, reports, .. } => {
                    self.recv.last_sr = (ntp >> 16) as u32;
                    self.recv.last_sr_at = Some(now);
                    self.rtt_from(now, reports);
                }
                RtcpPacket::ReceiverReport { reports, .. } => self.rtt_from(now, reports),
                RtcpPacket::Goodbye { ssrcs, .. } => {
                    self.events.push_back(RtpEvent::Bye { ssrcs: ssrcs.clone() });
                }
                _ => {}
            }
            self.events.push_back(RtpEvent::Rtcp(p));
        }
    }

    fn rtt_from(&mut self, now: Instant, reports: &[ReportBlock]) {
        let Some(r) = reports.iter().find(|r| r.ssrc == self.config.ssrc) else { return };
        if r.last_sr == 0 {
            return;
        }
        let a = (self.ntp(now) >> 16) as u32;
        let rtt = a.wrapping_sub(r.last_sr).wrapping_sub(r.delay_since_last_sr);
        if rtt < 0x8000_0000 {
            self.rtt = Some(Duration::from_secs_f64(f64::from(rtt) / 65536.0));
        }
    }

    fn report(&mut self, now: Instant) -> Vec<RtcpPacket> {
        let blocks: Vec<ReportBlock> = self.recv.block(now).into_iter().collect();
        let ssrc = self.config.ssrc;
        let first = if self.sent_since_report {
            let rtp_timestamp = match self.last_sent {
                Some((at, ts)) => {
                    let elapsed = now.saturating_duration_since(at);
                    ts.wrapping_add((elapsed.as_nanos() * u128::from(CLOCK) / 1_000_000_000) as u32)
                }
                None => self.timestamp,
            };
            RtcpPacket::SenderReport {
                ssrc,
                ntp: self.ntp(now),
                rtp_timestamp,
                packet_count: self.send.packets,
                octet_count: self.send.octets,
                reports: blocks,
            }
        } else {
            RtcpPacket::ReceiverReport { ssrc, reports: blocks }
        };
        self.sent_since_report = false;
        vec![first, RtcpPacket::SourceDescription(vec![(ssrc, self.config.cname.clone())])]
    }

    fn emit_rtcp(&mut self, packets: &[RtcpPacket]) {
        self.send.rtcp_packets = self.send.rtcp_packets.wrapping_add(1);
        if let Some(dest) = self.remote_rtcp() {
            let component = if self.config.rtcp_mux { Component::Rtp } else { Component::Rtcp };
            self.transmits.push_back(Transmit {
                destination: dest,
                component,
                data: RtcpPacket::compound_to_bytes(packets),
            });
        }
    }

    /// Sends an RTCP report if one is due, and reports an RTP timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.start(now);
        if self.closed {
            return;
        }
        if self.next_rtcp.is_some_and(|t| now >= t) {
            let packets = self.report(now);
            self.emit_rtcp(&packets);
            let interval = self.config.rtcp_interval;
            let d = self.randomize(interval);
            self.next_rtcp = now.checked_add(d);
        }
        if let (Some(limit), Some(last)) = (self.config.rtp_timeout, self.last_rx)
            && !self.timed_out
            && self.direction.receives()
            && last.checked_add(limit).is_some_and(|deadline| now >= deadline)
        {
            self.timed_out = true;
            self.events.push_back(RtpEvent::Timeout);
        }
    }

    /// The next time [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let timeout = match (self.config.rtp_timeout, self.last_rx) {
            (Some(limit), Some(last)) if !self.timed_out && self.direction.receives() => last.checked_add(limit),
            _ => None,
        };
        match (self.next_rtcp, timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<RtpEvent> {
        self.events.pop_front()
    }

    /// Ends the session: a final report with an RTCP BYE (RFC 3550 §6.6).
    pub fn close(&mut self, now: Instant, reason: Option<&str>) {
        if self.closed {
            return;
        }
        self.start(now);
        let mut packets = self.report(now);
        packets.push(RtcpPacket::Goodbye { ssrcs: vec![self.config.ssrc], reason: reason.map(String::from) });
        self.emit_rtcp(&packets);
        self.closed = true;
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}
