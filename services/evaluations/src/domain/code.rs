//! Invitation codes (邀请码): what an evaluator types or scans.
//!
//! A code is [`Code::LEN`] = 12 symbols drawn uniformly from [`Code::ALPHABET`], 30 symbols
//! without the look-alikes `0 O 1 I L U`: 30¹² ≈ 5.3 × 10¹⁷ codes (≈ 59 bits). It is shown once,
//! grouped as `ABCD-EFGH-JKMN`; what a person types back may use lower case, spaces or dashes.
//! The service stores only a keyed hash of the normalized code (`crypto.rs`), never the code.
//! docs/evaluator-anonymity.md works out why guessing is hopeless at the gateway's rate limit.

use super::values::ValueError;
use rand::Rng as _;

/// A normalized invitation code: exactly [`Code::LEN`] symbols of [`Code::ALPHABET`].
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl std::fmt::Debug for Code {
    /// Never prints the code itself (it is a credential).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Code(***)")
    }
}

impl Code {
    /// Digits and capitals without `0 O 1 I L U`.
    pub const ALPHABET: &'static [u8; 30] = b"23456789ABCDEFGHJKMNPQRSTVWXYZ";
    /// Symbols per code.
    pub const LEN: usize = 12;

    /// A fresh code from `rng` (a cryptographic RNG in production), each symbol uniform.
    pub fn generate(rng: &mut impl rand::RngCore) -> Self {
        let text = (0..Self::LEN)
            .map(|_| char::from(Self::ALPHABET[rng.gen_range(0..Self::ALPHABET.len())]))
            .collect();
        Self(text)
    }

    /// What a person typed: case, spaces and dashes are ignored.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let normalized: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if normalized.is_empty() {
            return Err(ValueError::Missing);
        }
        let valid = normalized.len() == Self::LEN
            && normalized.bytes().all(|b| Self::ALPHABET.contains(&b));
        if !valid {
            return Err(ValueError::Invalid(format!(
                "must be a {}-character invitation code",
                Self::LEN
            )));
        }
        Ok(Self(normalized))
    }

    /// The normalized form, the input of the keyed hash.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form shown to people: `ABCD-EFGH-JKMN`.
    pub fn grouped(&self) -> String {
        let (a, rest) = self.0.split_at(4);
        let (b, c) = rest.split_at(4);
        format!("{a}-{b}-{c}")
    }

    /// log₂ of the number of possible codes.
    pub fn entropy_bits() -> f64 {
        Self::LEN as f64 * (Self::ALPHABET.len() as f64).log2()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn alphabet_has_no_look_alikes_and_no_duplicates() {
        for c in b"0O1IL" {
            assert!(!Code::ALPHABET.contains(c), "{}", char::from(*c));
        }
        let mut sorted = Code::ALPHABET.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), Code::ALPHABET.len());
        assert!(Code::entropy_bits() > 58.0);
    }

    #[test]
    fn typed_forms_normalize() {
        let code = Code::parse("abcd-efgh-jkmn").unwrap();
        assert_eq!(code.as_str(), "ABCDEFGHJKMN");
        assert_eq!(code.grouped(), "ABCD-EFGH-JKMN");
        assert_eq!(Code::parse(" ABCD EFGH JKMN ").unwrap(), code);
        assert!(Code::parse("ABCDEFGHJKM").is_err());
        assert!(Code::parse("ABCDEFGHJKMNP").is_err());
        assert!(Code::parse("ABCDEFGHJKM0").is_err());
        assert_eq!(Code::parse(" - "), Err(ValueError::Missing));
        assert_eq!(format!("{code:?}"), "Code(***)");
    }

    proptest! {
        #[test]
        fn generated_codes_parse_back(seed in any::<u64>()) {
            use rand::SeedableRng as _;
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let code = Code::generate(&mut rng);
            prop_assert_eq!(Code::parse(&code.grouped()).unwrap(), code.clone());
            prop_assert_eq!(Code::parse(&code.as_str().to_lowercase()).unwrap(), code);
        }
    }
}
