//! Validated values. Each newtype's `parse` is the only way in, so a value held is a valid one.
//!
//! Personal data (phone, ID card number) also knows how to mask itself for API answers:
//! phone `138****5678`, ID card the first 3 and last 4 characters with `*` between.

use base64::Engine as _;
use chrono::NaiveDate;
use uuid::Uuid;

/// Why a value was refused. The text is what the API shows next to the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("is required")]
    Missing,
    #[error("must be at most {0} characters")]
    TooLong(usize),
    #[error("must be at least {0} characters")]
    TooShort(usize),
    #[error("must be one of: {}", .0.join(", "))]
    OneOf(&'static [&'static str]),
    #[error("{0}")]
    Format(&'static str),
    #[error("has a wrong check digit")]
    Checksum,
    #[error("must not be in the future")]
    InFuture,
    #[error("must not be before {0}")]
    TooEarly(NaiveDate),
    #[error("must be a UUID")]
    NotUuid,
    #[error("must not be negative")]
    Negative,
    #[error("is not a valid page token")]
    BadPageToken,
}

fn trimmed_text(text: &str, max: usize) -> Result<String, ValueError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(ValueError::Missing);
    }
    if t.chars().count() > max {
        return Err(ValueError::TooLong(max));
    }
    if t.chars().any(char::is_control) {
        return Err(ValueError::Format("must not contain control characters"));
    }
    Ok(t.to_owned())
}

/// A person's name (1–50 characters, trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub const MAX: usize = 50;

    pub fn parse(text: &str) -> Result<Self, ValueError> {
        trimmed_text(text, Self::MAX).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An organization's name (1–100 characters, trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgName(String);

impl OrgName {
    pub const MAX: usize = 100;

    pub fn parse(text: &str) -> Result<Self, ValueError> {
        trimmed_text(text, Self::MAX).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why something was done (transfer, sanction): 1–1000 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub const MAX: usize = 1000;

    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(ValueError::Missing);
        }
        if t.chars().count() > Self::MAX {
            return Err(ValueError::TooLong(Self::MAX));
        }
        Ok(Self(t.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A mainland mobile number: 11 digits starting with `1`.
#[derive(Clone, PartialEq, Eq)]
pub struct Phone(String);

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

impl Phone {
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(ValueError::Missing);
        }
        if t.len() != 11 || !t.bytes().all(|b| b.is_ascii_digit()) || !t.starts_with('1') {
            return Err(ValueError::Format("must be 11 digits starting with 1"));
        }
        Ok(Self(t.to_owned()))
    }

    /// The clear number: only for the member themself, and for encryption.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `138****5678`.
    pub fn masked(&self) -> String {
        mask(&self.0, 3, 4)
    }
}

/// A resident identity card number (GB 11643-1999): 17 digits whose 7th–14th are a real birth
/// date, then a check character (digit or `X`) computed from the first 17.
#[derive(Clone, PartialEq, Eq)]
pub struct IdCard(String);

impl std::fmt::Debug for IdCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdCard({})", self.masked())
    }
}

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

impl IdCard {
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let t = text.trim().to_ascii_uppercase();
        if t.is_empty() {
            return Err(ValueError::Missing);
        }
        let bytes = t.as_bytes();
        if bytes.len() != 18
            || !bytes[..17].iter().all(u8::is_ascii_digit)
            || !(bytes[17].is_ascii_digit() || bytes[17] == b'X')
        {
            return Err(ValueError::Format(
                "must be 17 digits followed by a digit or X",
            ));
        }
        let birth = NaiveDate::parse_from_str(&t[6..14], "%Y%m%d")
            .map_err(|_| ValueError::Format("must contain a valid birth date (characters 7-14)"))?;
        if birth.year_ce().1 < 1900 {
            return Err(ValueError::Format(
                "must contain a valid birth date (characters 7-14)",
            ));
        }
        if bytes[17] != Self::check_char(&bytes[..17]) {
            return Err(ValueError::Checksum);
        }
        Ok(Self(t))
    }

    /// The check character of 17 leading digits.
    pub fn check_char(first17: &[u8]) -> u8 {
        let sum: u32 = first17
            .iter()
            .zip(ID_WEIGHTS)
            .map(|(d, w)| u32::from(d - b'0') * w)
            .sum();
        ID_CHECK[(sum % 11) as usize]
    }

    /// The clear number (upper-case `X`): only for the member themself, and for encryption.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `110***********002X`.
    pub fn masked(&self) -> String {
        mask(&self.0, 3, 4)
    }
}

use chrono::Datelike as _;

/// Keeps `head` leading and `tail` trailing characters and stars the rest.
pub fn mask(text: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= head + tail {
        return "*".repeat(chars.len());
    }
    let mut out = String::with_capacity(chars.len());
    out.extend(&chars[..head]);
    out.extend(std::iter::repeat_n('*', chars.len() - head - tail));
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// The founding of the Party: no one joined before it.
pub fn party_founded() -> NaiveDate {
    NaiveDate::from_ymd_opt(1921, 7, 1).unwrap_or(NaiveDate::MIN)
}

/// A calendar date written `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<NaiveDate, ValueError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(ValueError::Missing);
    }
    if t.len() != 10 {
        return Err(ValueError::Format("must be a date YYYY-MM-DD"));
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .map_err(|_| ValueError::Format("must be a date YYYY-MM-DD"))
}

/// A past (or today's) date `YYYY-MM-DD` not before the Party's founding: the day a member
/// joined, the day a sanction was decided.
pub fn parse_past_date(text: &str, today: NaiveDate) -> Result<NaiveDate, ValueError> {
    let date = parse_date(text)?;
    if date > today {
        return Err(ValueError::InFuture);
    }
    if date < party_founded() {
        return Err(ValueError::TooEarly(party_founded()));
    }
    Ok(date)
}

/// A UUID id field (any version; ids this service makes are UUIDv7).
pub fn parse_id(text: &str) -> Result<Uuid, ValueError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(ValueError::Missing);
    }
    Uuid::parse_str(t).map_err(|_| ValueError::NotUuid)
}

/// An account's login name: 3–32 characters of `a-z 0-9 _ . -`, starting with a letter or digit;
/// case-insensitive (kept lower-case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let t = text.trim().to_ascii_lowercase();
        if t.is_empty() {
            return Err(ValueError::Missing);
        }
        if t.len() < 3 {
            return Err(ValueError::TooShort(3));
        }
        if t.len() > 32 {
            return Err(ValueError::TooLong(32));
        }
        let ok_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-');
        let starts_ok = t
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !t.chars().all(ok_char) || !starts_ok {
            return Err(ValueError::Format(
                "may hold a-z, 0-9, '_', '.', '-' and must start with a letter or digit",
            ));
        }
        Ok(Self(t))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password: 8–128 characters. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    pub const MIN: usize = 8;
    pub const MAX: usize = 128;

    pub fn parse(text: &str) -> Result<Self, ValueError> {
        if text.is_empty() {
            return Err(ValueError::Missing);
        }
        let n = text.chars().count();
        if n < Self::MIN {
            return Err(ValueError::TooShort(Self::MIN));
        }
        if n > Self::MAX {
            return Err(ValueError::TooLong(Self::MAX));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// One page of a listing ordered by id (AIP-158): at most `size` items after `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub size: u64,
    pub after: Option<Uuid>,
}

impl Page {
    pub const DEFAULT_SIZE: u64 = 50;
    pub const MAX_SIZE: u64 = 500;

    /// `page_size` 0 means the default; larger than the maximum is coerced to the maximum.
    pub fn parse_size(size: i32) -> Result<u64, ValueError> {
        match u64::try_from(size) {
            Err(_) => Err(ValueError::Negative),
            Ok(0) => Ok(Self::DEFAULT_SIZE),
            Ok(n) => Ok(n.min(Self::MAX_SIZE)),
        }
    }

    /// An empty token is the first page.
    pub fn parse_token(token: &str) -> Result<Option<Uuid>, ValueError> {
        if token.is_empty() {
            return Ok(None);
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| ValueError::BadPageToken)?;
        let bytes: [u8; 16] = bytes.try_into().map_err(|_| ValueError::BadPageToken)?;
        Ok(Some(Uuid::from_bytes(bytes)))
    }

    /// The opaque token of the page after the one ending with `last`.
    pub fn token_after(last: Uuid) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// A valid ID card number from its first 17 digits.
    fn with_check(first17: &str) -> String {
        let c = IdCard::check_char(first17.as_bytes());
        format!("{first17}{}", c as char)
    }

    #[test]
    fn phone_rules_and_mask() {
        let p = Phone::parse(" 13812345678 ").unwrap();
        assert_eq!(p.as_str(), "13812345678");
        assert_eq!(p.masked(), "138****5678");
        assert_eq!(Phone::parse(""), Err(ValueError::Missing));
        for bad in [
            "23812345678",
            "1381234567",
            "138123456789",
            "1381234567a",
            "+8613812345",
        ] {
            assert!(
                matches!(Phone::parse(bad), Err(ValueError::Format(_))),
                "{bad}"
            );
        }
        assert!(!format!("{p:?}").contains("1234"));
    }

    #[test]
    fn id_card_checksum_and_mask() {
        // The published example of GB 11643.
        let id = IdCard::parse("11010519491231002x").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id.masked(), "110***********002X");
        assert_eq!(
            IdCard::parse("110105194912310021"),
            Err(ValueError::Checksum)
        );
        assert!(
            matches!(
                IdCard::parse("11010519491331002X"),
                Err(ValueError::Format(_))
            ),
            "month 13"
        );
        assert!(matches!(
            IdCard::parse("1101051949123100"),
            Err(ValueError::Format(_))
        ));
        assert!(matches!(
            IdCard::parse("1101051949123100XX"),
            Err(ValueError::Format(_))
        ));
        assert!(!format!("{id:?}").contains("19491231"));
    }

    proptest! {
        #[test]
        fn every_computed_check_char_is_accepted(seq in 0u32..1_000, day in 1u32..=28, month in 1u32..=12, year in 1930u32..2010) {
            let first17 = format!("110105{year:04}{month:02}{day:02}{seq:03}");
            let id = with_check(&first17);
            prop_assert!(IdCard::parse(&id).is_ok());
            // Any other check character is refused.
            for c in "0123456789X".chars().filter(|c| *c != id.chars().last().unwrap()) {
                prop_assert_eq!(IdCard::parse(&format!("{first17}{c}")), Err(ValueError::Checksum));
            }
        }

        #[test]
        fn masks_keep_length_and_ends(s in "[0-9]{8,30}") {
            let m = mask(&s, 3, 4);
            prop_assert_eq!(m.chars().count(), s.chars().count());
            prop_assert_eq!(&m[..3], &s[..3]);
            prop_assert_eq!(&m[m.len() - 4..], &s[s.len() - 4..]);
            prop_assert!(m[3..m.len() - 4].chars().all(|c| c == '*'));
        }
    }

    #[test]
    fn dates() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        assert_eq!(parse_past_date("2026-11-22", today).unwrap(), today);
        assert_eq!(
            parse_past_date("2026-11-23", today),
            Err(ValueError::InFuture)
        );
        assert!(matches!(
            parse_past_date("1921-06-30", today),
            Err(ValueError::TooEarly(_))
        ));
        assert!(matches!(
            parse_past_date("2026-2-1", today),
            Err(ValueError::Format(_))
        ));
        assert!(matches!(
            parse_past_date("2026-02-30", today),
            Err(ValueError::Format(_))
        ));
        assert_eq!(parse_past_date(" ", today), Err(ValueError::Missing));
    }

    #[test]
    fn names_usernames_passwords() {
        assert_eq!(PersonName::parse("  张三 ").unwrap().as_str(), "张三");
        assert_eq!(PersonName::parse(""), Err(ValueError::Missing));
        assert_eq!(
            PersonName::parse(&"名".repeat(51)),
            Err(ValueError::TooLong(50))
        );
        assert!(PersonName::parse("a\u{0}b").is_err());
        assert_eq!(Username::parse("Zhang.San").unwrap().as_str(), "zhang.san");
        assert_eq!(Username::parse("ab"), Err(ValueError::TooShort(3)));
        assert!(Username::parse("_abc").is_err());
        assert!(Username::parse("张三丰").is_err());
        assert_eq!(Password::parse("1234567"), Err(ValueError::TooShort(8)));
        assert!(Password::parse("12345678").is_ok());
        assert_eq!(
            format!("{:?}", Password::parse("secret-password").unwrap()),
            "Password(***)"
        );
        assert_eq!(Reason::parse("  "), Err(ValueError::Missing));
    }

    #[test]
    fn pages() {
        assert_eq!(Page::parse_size(0).unwrap(), 50);
        assert_eq!(Page::parse_size(10).unwrap(), 10);
        assert_eq!(Page::parse_size(10_000).unwrap(), 500);
        assert_eq!(Page::parse_size(-1), Err(ValueError::Negative));
        let id = Uuid::now_v7();
        assert_eq!(Page::parse_token(&Page::token_after(id)).unwrap(), Some(id));
        assert_eq!(Page::parse_token("").unwrap(), None);
        assert_eq!(Page::parse_token("!!"), Err(ValueError::BadPageToken));
        assert_eq!(Page::parse_token("AAAA"), Err(ValueError::BadPageToken));
    }
}
