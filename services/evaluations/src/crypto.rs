//! Keyed hashing of invitation codes, and the ballot ticket.
//!
//! A code is stored only as HMAC-SHA-256 under the service's secret key
//! (`JIFEN_EVALUATIONS_CODE_KEY`), so a copy of the database alone cannot test guesses offline.
//! The **ticket** is what the gateway puts into an evaluator token's subject
//! (`evaluator:<ticket>`): the code's keyed hash (base64url) and, for a member evaluator, the
//! member to leave off their own ballot (`<hash>.<member id>`). The token is signed by the
//! gateway, so the ticket cannot be forged; it never reaches the database.

use crate::domain::Code;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use uuid::Uuid;

/// Prefix of an evaluator token's subject.
pub const EVALUATOR_SUBJECT_PREFIX: &str = "evaluator:";

/// The keyed hash of invitation codes.
#[derive(Clone)]
pub struct CodeHasher {
    key: std::sync::Arc<[u8]>,
}

impl std::fmt::Debug for CodeHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeHasher(***)")
    }
}

/// A ticket that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a ballot ticket")]
pub struct BadTicket;

/// What a ticket carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub code_hash: Vec<u8>,
    /// For a member evaluator: themself, left off their ballot.
    pub exclude: Option<Uuid>,
}

impl CodeHasher {
    /// The key must be 32 bytes.
    pub fn new(key: &[u8]) -> Result<Self, String> {
        if key.len() != 32 {
            return Err(format!("the code key must be 32 bytes, got {}", key.len()));
        }
        Ok(Self { key: key.into() })
    }

    /// HMAC-SHA-256 of the normalized code, 32 bytes.
    pub fn hash(&self, code: &Code) -> Vec<u8> {
        // HMAC accepts keys of any length: `new_from_slice` cannot fail here.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return Vec::new();
        };
        mac.update(b"jifen-evaluations-code-v1\0");
        mac.update(code.as_str().as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

impl Ticket {
    pub fn encode(&self) -> String {
        let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.code_hash);
        match self.exclude {
            Some(m) => format!("{hash}.{m}"),
            None => hash,
        }
    }

    pub fn decode(text: &str) -> Result<Self, BadTicket> {
        let (hash, exclude) = match text.split_once('.') {
            Some((h, m)) => (h, Some(Uuid::parse_str(m).map_err(|_| BadTicket)?)),
            None => (text, None),
        };
        let code_hash = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(hash)
            .map_err(|_| BadTicket)?;
        if code_hash.len() != 32 {
            return Err(BadTicket);
        }
        Ok(Self { code_hash, exclude })
    }

    /// The ticket of an evaluator token's subject.
    pub fn from_subject(subject: &str) -> Result<Self, BadTicket> {
        Self::decode(
            subject
                .strip_prefix(EVALUATOR_SUBJECT_PREFIX)
                .ok_or(BadTicket)?,
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hashes_are_keyed_and_stable() {
        let code = Code::parse("ABCD-EFGH-JKMN").unwrap();
        let a = CodeHasher::new(&[1; 32]).unwrap();
        let b = CodeHasher::new(&[2; 32]).unwrap();
        assert_eq!(a.hash(&code).len(), 32);
        assert_eq!(a.hash(&code), a.hash(&Code::parse("abcdefghjkmn").unwrap()));
        assert_ne!(a.hash(&code), b.hash(&code));
        assert!(CodeHasher::new(&[0; 16]).is_err());
    }

    #[test]
    fn tickets_round_trip() {
        let t = Ticket {
            code_hash: vec![7; 32],
            exclude: None,
        };
        assert_eq!(Ticket::decode(&t.encode()).unwrap(), t);
        let m = Ticket {
            code_hash: vec![9; 32],
            exclude: Some(Uuid::now_v7()),
        };
        let subject = format!("{EVALUATOR_SUBJECT_PREFIX}{}", m.encode());
        assert_eq!(Ticket::from_subject(&subject).unwrap(), m);
        assert!(Ticket::from_subject("admin").is_err());
        assert!(Ticket::decode("short").is_err());
    }
}
