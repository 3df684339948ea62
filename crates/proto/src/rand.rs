//! Injected randomness. The core never draws entropy itself: tags, branches,
//! Call-IDs, cnonces and the glare back-off come from an [`Rng`] passed in,
//! so tests are deterministic.

/// A source of random 64-bit values.
pub trait Rng {
    /// The next value.
    fn next_u64(&mut self) -> u64;

    /// A value in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// `len` characters from `[0-9a-v]`, for tags, branches and Call-IDs.
    fn token(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len + 8);
        self.push_token(&mut s, len);
        s
    }

    /// Appends `len` characters from `[0-9a-v]` to `s`.
    fn push_token(&mut self, s: &mut String, len: usize) {
        let mut buf = [0u8; 32];
        let mut left = len;
        while left > 0 {
            let n = left.min(buf.len());
            self.fill_token(&mut buf[..n]);
            // Only ASCII letters and digits were written.
            s.extend(buf[..n].iter().map(|&b| b as char));
            left -= n;
        }
    }

    /// Fills `out` with characters from `[0-9a-v]`: five random bits each,
    /// twelve per random value (shifts and masks, no division; a 16-character
    /// tag or branch carries 80 random bits).
    fn fill_token(&mut self, out: &mut [u8]) {
        const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
        for chunk in out.chunks_mut(12) {
            let mut bits = self.next_u64();
            for b in chunk {
                *b = ALPHABET[(bits & 31) as usize];
                bits >>= 5;
            }
        }
    }
}

/// SplitMix64: small, fast and seedable. Good for tests and for tags when
/// seeded from the OS by the caller; not a cryptographic generator.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
}

impl Rng for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `len` (at most 23) token characters as a string held inline: tags and
/// branches without a heap allocation.
pub fn short_token(rng: &mut dyn Rng, len: usize) -> sipact_message::ByteString {
    let mut buf = [0u8; 23];
    let len = len.min(buf.len());
    rng.fill_token(&mut buf[..len]);
    token_text(&buf[..len])
}

/// The text of token bytes (letters and digits only).
pub(crate) fn token_text(b: &[u8]) -> sipact_message::ByteString {
    std::str::from_utf8(b).map(sipact_message::ByteString::from).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_tokens() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        let t = a.token(16);
        assert_eq!(t, b.token(16));
        assert_eq!(t.len(), 16);
        assert!(t.bytes().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
        assert!(a.below(10) < 10);
    }

    /// Counts its draws; returns a fixed value.
    struct Counting(u64, u32);

    impl Rng for Counting {
        fn next_u64(&mut self) -> u64 {
            self.1 += 1;
            self.0
        }
    }

    #[test]
    fn tokens_take_five_bits_a_character_twelve_a_draw() {
        // 0b00001_00010_... : the characters follow the bits, low first.
        let v = (0..12).fold(0u64, |acc, i| acc | ((i as u64 + 20) << (5 * i)));
        let mut r = Counting(v, 0);
        let mut buf = [0u8; 16];
        r.fill_token(&mut buf);
        assert_eq!(&buf, b"klmnopqrstuvklmn");
        assert_eq!(r.1, 2);
        let mut r = Counting(u64::MAX, 0);
        assert_eq!(r.token(24), "v".repeat(24));
        assert_eq!(r.1, 2);
        // Over many draws every one of the 32 characters appears, no other.
        let mut g = SplitMix64::new(1);
        let mut seen = [0u32; 256];
        for _ in 0..200 {
            for c in g.token(16).bytes() {
                seen[usize::from(c)] += 1;
            }
        }
        let alphabet = b"0123456789abcdefghijklmnopqrstuv";
        assert!(alphabet.iter().all(|&c| seen[usize::from(c)] > 0));
        assert_eq!(seen.iter().sum::<u32>(), alphabet.iter().map(|&c| seen[usize::from(c)]).sum::<u32>());
    }
}
