fn main() {
    let mut a = std::env::args().skip(1);
    let path = a.next().unwrap();
    let n: u32 = a.next().unwrap().parse().unwrap();
    let data = bytes::Bytes::from(std::fs::read(&path).unwrap());
    let limits = sipact_message::Limits::default();
    for _ in 0..n {
        let r = sipact_message::SipMessage::parse_lenient(std::hint::black_box(data.clone()), &limits);
        std::hint::black_box(&r);
    }
}
