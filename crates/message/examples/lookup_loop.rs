//! Header-name lookups in a loop, for instruction counts.
fn main() {
    let names =
        ["Via", "Max-Forwards", "From", "To", "Call-ID", "CSeq", "Contact", "Content-Type", "Content-Length", "X-Foo"];
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let mut acc = 0usize;
    for i in 0..n {
        for name in names {
            acc += sipact_message::HeaderName::lookup(std::hint::black_box(name)).map(|h| h as usize).unwrap_or(i & 1);
        }
    }
    println!("{acc}");
}
