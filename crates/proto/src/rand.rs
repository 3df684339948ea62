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

    /// `len` characters from `[0-9a-z]`, for tags, branches and Call-IDs.
    fn token(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut s = String::with_capacity(len);
        let mut bits = 0u64;
        let mut left = 0;
        for _ in 0..len {
            if left == 0 {
                bits = self.next_u64();
                left = 10;
            }
            s.push(ALPHABET[(bits % 36) as usize] as char);
            bits /= 36;
            left -= 1;
        }
        s
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
}
