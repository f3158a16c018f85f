//! The generator behind every world: SplitMix64 and the identifiers it draws.

use docket_model::{ResidentId, Uscc};

/// A small deterministic generator (SplitMix64).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

pub(crate) fn uscc(rng: &mut Rng) -> Uscc {
    let alphabet = Uscc::alphabet();
    let mut first: String = "91".into();
    first.push_str(&format!("{:06}", 110000 + rng.below(540000)));
    for _ in 0..9 {
        first.push(alphabet[rng.below(31) as usize] as char);
    }
    let check = Uscc::check_character(first.as_bytes());
    Uscc::parse(&format!("{first}{check}")).unwrap_or_else(|error| unreachable!("generated USCC is valid: {error}"))
}

pub(crate) fn resident(rng: &mut Rng) -> ResidentId {
    resident_born(rng, 1950, 50)
}

/// A resident id with a birth year in `from..from + years`.
pub(crate) fn resident_born(rng: &mut Rng, from: u64, years: u64) -> ResidentId {
    let first = format!(
        "{:06}{:04}{:02}{:02}{:03}",
        110101 + rng.below(500000),
        from + rng.below(years),
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(1000)
    );
    let check = ResidentId::check_character(first.as_bytes());
    ResidentId::parse(&format!("{first}{check}")).unwrap_or_else(|error| unreachable!("generated id is valid: {error}"))
}
