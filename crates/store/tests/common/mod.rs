//! Helpers shared by the integration tests.

#![allow(dead_code)]

/// A valid-looking entry: 0x01, then `len - 1` bytes derived from `seed`.
pub fn entry(seed: u64, len: usize) -> Vec<u8> {
    let mut e = Vec::with_capacity(len);
    e.push(0x01);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while e.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        e.push(x as u8);
    }
    e
}

/// A seed from the clock, printed so a failure can be replayed.
pub fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1
}

/// xorshift64*.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
