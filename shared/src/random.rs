//! Randomness from the platform's CSPRNG (`wasi:random` in a component, the
//! OS natively), and the temporary-password generator built on it.

/// Fills `buf` from the CSPRNG. A platform without one cannot run us safely.
pub fn fill(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the platform CSPRNG is unavailable");
}

/// One byte from the CSPRNG.
fn csprng_byte() -> u8 {
    let mut b = [0u8; 1];
    fill(&mut b);
    b[0]
}

/// A uniformly drawn index below `n` from uniform bytes (rejection
/// sampling: no modulo bias).
fn below(n: usize, byte: &mut impl FnMut() -> u8) -> usize {
    debug_assert!(n > 0 && n <= 256);
    let limit = 256 - (256 % n);
    loop {
        let b = byte() as usize;
        if b < limit {
            return b % n;
        }
    }
}

const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ"; // no I, O (confusable)
const LOWER: &[u8] = b"abcdefghijkmnpqrstuvwxyz"; // no l
const DIGIT: &[u8] = b"23456789"; // no 0, 1
const SYMBOL: &[u8] = b"!@#$%&*+-=";
pub const PASSWORD_LEN: usize = 16;

/// A 16-character temporary password with at least one upper-case letter,
/// lower-case letter, digit and symbol (the seed's alphabet, which clears
/// Authentik's and Stalwart's policies), drawn from the CSPRNG and shuffled
/// with an unbiased Fisher–Yates.
pub fn temp_password() -> String {
    password_from(&mut csprng_byte)
}

/// [`temp_password`] drawn from any source of uniform bytes (tests use a
/// seeded one, so their statistics are the same on every run).
fn password_from(byte: &mut impl FnMut() -> u8) -> String {
    let all: Vec<u8> = [UPPER, LOWER, DIGIT, SYMBOL].concat();
    let mut out: Vec<u8> = [UPPER, LOWER, DIGIT, SYMBOL].iter().map(|class| class[below(class.len(), byte)]).collect();
    while out.len() < PASSWORD_LEN {
        out.push(all[below(all.len(), byte)]);
    }
    for i in (1..out.len()).rev() {
        out.swap(i, below(i + 1, byte));
    }
    String::from_utf8(out).expect("the alphabet is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::{HashMap, HashSet};

    /// Uniform bytes from a fixed seed: the statistical tests below judge
    /// the algorithm (rejection sampling, shuffle) on the same draws every
    /// run, so a chance failure cannot happen — one fails only when the
    /// algorithm changes. The CSPRNG itself is the platform's.
    fn seeded(seed: u64) -> impl FnMut() -> u8 {
        let mut rng = StdRng::seed_from_u64(seed);
        move || rng.gen()
    }

    #[test]
    fn passwords_have_every_class_and_the_right_length() {
        for _ in 0..2000 {
            let p = temp_password();
            assert_eq!(p.len(), PASSWORD_LEN);
            let b = p.as_bytes();
            for class in [UPPER, LOWER, DIGIT, SYMBOL] {
                assert!(b.iter().any(|c| class.contains(c)), "{p} lacks a class");
            }
            assert!(b.iter().all(|c| [UPPER, LOWER, DIGIT, SYMBOL].iter().any(|cl| cl.contains(c))));
        }
    }

    #[test]
    fn passwords_from_the_csprng_do_not_repeat() {
        // 20 000 draws from ~2^90 passwords: a repeat has odds below 2^-60.
        let mut seen = HashSet::new();
        for _ in 0..20_000 {
            assert!(seen.insert(temp_password()), "a password repeated");
        }
    }

    #[test]
    fn characters_are_evenly_drawn_and_evenly_placed() {
        let n = 20_000;
        let mut byte = seeded(19);
        let mut freq: HashMap<u8, usize> = HashMap::new();
        for _ in 0..n {
            let p = password_from(&mut byte);
            for c in p.bytes() {
                *freq.entry(c).or_default() += 1;
            }
        }
        // Every character of the alphabet appears, and no character is far
        // from its expected share. The four forced characters skew the
        // classes a little, so compare within a class: each of its members
        // should be within 15% of the class mean (n is large enough that
        // a uniform draw stays well inside that).
        for class in [UPPER, LOWER, DIGIT, SYMBOL] {
            let counts: Vec<usize> = class.iter().map(|c| freq.get(c).copied().unwrap_or(0)).collect();
            let mean = counts.iter().sum::<usize>() as f64 / counts.len() as f64;
            for (c, k) in class.iter().zip(&counts) {
                let dev = (*k as f64 - mean).abs() / mean;
                assert!(dev < 0.15, "{} drawn {k} times, class mean {mean:.0}", *c as char);
            }
        }
        // Chi-square over positions: the shuffle spreads the symbol class
        // evenly over all 16 positions.
        let mut pos = [0usize; PASSWORD_LEN];
        for _ in 0..n {
            for (i, c) in password_from(&mut byte).bytes().enumerate() {
                if SYMBOL.contains(&c) {
                    pos[i] += 1;
                }
            }
        }
        let mean = pos.iter().sum::<usize>() as f64 / PASSWORD_LEN as f64;
        let chi2: f64 = pos.iter().map(|&k| (k as f64 - mean).powi(2) / mean).sum();
        // 15 degrees of freedom: p = 0.001 at 37.7.
        assert!(chi2 < 37.7, "symbol positions are uneven: chi2 = {chi2:.1}, {pos:?}");
    }

    #[test]
    fn index_draws_are_unbiased() {
        let mut counts = [0usize; 10];
        let mut byte = seeded(19);
        for _ in 0..50_000 {
            counts[below(10, &mut byte)] += 1;
        }
        let chi2: f64 = counts.iter().map(|&k| (k as f64 - 5000.0).powi(2) / 5000.0).sum();
        assert!(chi2 < 27.9, "chi2 = {chi2:.1} (9 d.f., p = 0.001)");
    }
}
