//! `--pcap FILE`: every SIP message sent and received, in a classic pcap
//! file (link type Ethernet) with Ethernet, IPv4 or IPv6, and UDP or TCP
//! headers synthesized around it, so that `tshark -r FILE -Y sip` decodes
//! it. Stream transports (TCP, TLS, WebSocket) are written as TCP segments
//! carrying the plain SIP text, with per-direction sequence numbers; the
//! local port of an outgoing connection is shown as the listening port.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Link type Ethernet.
const LINKTYPE_ETHERNET: u32 = 1;
/// Largest TCP payload per synthesized segment.
const SEGMENT: usize = 32_000;

/// A pcap file being written.
pub struct PcapWriter {
    out: BufWriter<File>,
    /// Next sequence number per TCP direction.
    seq: HashMap<(SocketAddr, SocketAddr), u32>,
}

impl PcapWriter {
    /// Creates `path` and writes the global header.
    pub fn create(path: &Path) -> std::io::Result<PcapWriter> {
        let mut out = BufWriter::new(File::create(path)?);
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // microsecond timestamps
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        h.extend_from_slice(&262_144u32.to_le_bytes()); // snaplen
        h.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&h)?;
        out.flush()?;
        Ok(PcapWriter { out, seq: HashMap::new() })
    }

    /// Writes one message from `src` to `dst`, over UDP or TCP.
    pub fn write(
        &mut self,
        at: SystemTime,
        src: SocketAddr,
        dst: SocketAddr,
        tcp: bool,
        payload: &[u8],
    ) -> std::io::Result<()> {
        let (src, dst) = same_family(src, dst);
        if tcp {
            for chunk in payload.chunks(SEGMENT) {
                let seq = *self.seq.entry((src, dst)).or_insert(1);
                let ack = *self.seq.entry((dst, src)).or_insert(1);
                let len = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
                self.seq.insert((src, dst), seq.wrapping_add(len));
                let l4 = tcp_segment(src, dst, seq, ack, chunk);
                self.packet(at, src.ip(), dst.ip(), 6, &l4)?;
            }
        } else {
            let l4 = udp_datagram(src, dst, payload);
            self.packet(at, src.ip(), dst.ip(), 17, &l4)?;
        }
        self.out.flush()
    }

    fn packet(&mut self, at: SystemTime, src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> std::io::Result<()> {
        let mut frame = Vec::with_capacity(14 + 40 + l4.len());
        frame.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // loopback MACs
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                frame.extend_from_slice(&0x0800u16.to_be_bytes());
                frame.extend_from_slice(&ipv4_header(s, d, proto, l4.len()));
            }
            (s, d) => {
                frame.extend_from_slice(&0x86ddu16.to_be_bytes());
                frame.extend_from_slice(&ipv6_header(v6(s), v6(d), proto, l4.len()));
            }
        }
        frame.extend_from_slice(l4);
        let d = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let mut rec = Vec::with_capacity(16);
        rec.extend_from_slice(&u32::try_from(d.as_secs()).unwrap_or(u32::MAX).to_le_bytes());
        rec.extend_from_slice(&d.subsec_micros().to_le_bytes());
        rec.extend_from_slice(&len.to_le_bytes());
        rec.extend_from_slice(&len.to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(&frame)
    }
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// An unspecified address becomes the loopback of the other side's family;
/// mixed families become IPv6 (v4-mapped).
fn same_family(src: SocketAddr, dst: SocketAddr) -> (SocketAddr, SocketAddr) {
    let fix = |a: SocketAddr, other: &SocketAddr| {
        if a.ip().is_unspecified() {
            let ip = match other.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            };
            SocketAddr::new(ip, a.port())
        } else {
            a
        }
    };
    let (s, d) = (fix(src, &dst), fix(dst, &src));
    if s.is_ipv4() == d.is_ipv4() {
        (s, d)
    } else {
        (SocketAddr::new(IpAddr::V6(v6(s.ip())), s.port()), SocketAddr::new(IpAddr::V6(v6(d.ip())), d.port()))
    }
}

/// The Internet checksum of `data` starting from `sum`.
fn checksum(mut sum: u32, data: &[u8]) -> u16 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn pseudo_sum(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    let mut v = Vec::with_capacity(40);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            v.extend_from_slice(&s.octets());
            v.extend_from_slice(&d.octets());
        }
        (s, d) => {
            v.extend_from_slice(&v6(s).octets());
            v.extend_from_slice(&v6(d).octets());
        }
    }
    let mut sum = 0u32;
    for c in v.chunks_exact(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    sum + u32::from(proto) + (len >> 16) + (len & 0xffff)
}

fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: usize) -> [u8; 20] {
    let total = u16::try_from(20 + payload).unwrap_or(u16::MAX);
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[6] = 0x40; // don't fragment
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let c = checksum(0, &h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

fn ipv6_header(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, payload: usize) -> [u8; 40] {
    let mut h = [0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&u16::try_from(payload).unwrap_or(u16::MAX).to_be_bytes());
    h[6] = proto;
    h[7] = 64;
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&dst.octets());
    h
}

fn udp_datagram(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&src.port().to_be_bytes());
    v.extend_from_slice(&dst.port().to_be_bytes());
    v.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(payload);
    let mut c = checksum(pseudo_sum(src.ip(), dst.ip(), 17, len), &v);
    if c == 0 {
        c = 0xffff;
    }
    v[6..8].copy_from_slice(&c.to_be_bytes());
    v
}

fn tcp_segment(src: SocketAddr, dst: SocketAddr, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(20 + payload.len());
    v.extend_from_slice(&src.port().to_be_bytes());
    v.extend_from_slice(&dst.port().to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ack.to_be_bytes());
    v.push(5 << 4); // header length: 5 words
    v.push(0x18); // PSH, ACK
    v.extend_from_slice(&65_535u16.to_be_bytes()); // window
    v.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    v.extend_from_slice(payload);
    let c = checksum(pseudo_sum(src.ip(), dst.ip(), 6, v.len()), &v);
    v[16..18].copy_from_slice(&c.to_be_bytes());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_checksum_verifies() {
        let h = ipv4_header(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, 17, 100);
        assert_eq!(checksum(0, &h), 0);
    }

    #[test]
    fn udp_checksum_verifies() {
        let s: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let d: SocketAddr = "127.0.0.1:5070".parse().unwrap();
        let u = udp_datagram(s, d, b"OPTIONS sip:x SIP/2.0\r\n\r\n!");
        assert_eq!(checksum(pseudo_sum(s.ip(), d.ip(), 17, u.len()), &u), 0);
        let t = tcp_segment(s, d, 1, 1, b"odd");
        assert_eq!(checksum(pseudo_sum(s.ip(), d.ip(), 6, t.len()), &t), 0);
    }

    #[test]
    fn unspecified_and_mixed_families() {
        let (s, d) = same_family("0.0.0.0:5060".parse().unwrap(), "127.0.0.1:1".parse().unwrap());
        assert_eq!(s, "127.0.0.1:5060".parse::<SocketAddr>().unwrap());
        assert_eq!(d, "127.0.0.1:1".parse::<SocketAddr>().unwrap());
        let (s, _) = same_family("127.0.0.1:5060".parse().unwrap(), "[::1]:1".parse().unwrap());
        assert!(s.is_ipv6());
    }
}
