//! Protection of personal data and passwords.
//!
//! * Phone and ID card numbers are encrypted with AES-256-GCM, a fresh random 96-bit nonce per
//!   value, and associated data binding the ciphertext to its field and its member (a ciphertext
//!   copied onto another row or column does not decrypt). Stored form: `0x01 || nonce || ct+tag`.
//! * A keyed hash (HMAC-SHA256) of the normalized value serves look-ups and the uniqueness of ID
//!   cards without storing anything an attacker could brute-force offline without the key.
//! * Both keys are derived from one 32-byte master key (`JIFEN_PII_KEY`) with HMAC-SHA256 under
//!   distinct labels; there is no default key.
//! * Passwords are hashed with argon2id (PHC string with its salt and parameters).

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Version byte of the stored ciphertext format.
const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;
const ENCRYPTION_LABEL: &[u8] = b"jifen.members.pii.encryption.v1";
const LOOKUP_LABEL: &[u8] = b"jifen.members.pii.lookup.v1";

/// What can go wrong protecting personal data.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the PII master key must be exactly 32 bytes, got {0}")]
    KeyLength(usize),
    #[error("encryption failed")]
    Encrypt,
    #[error("a stored value does not decrypt (wrong key, or tampered)")]
    Decrypt,
    #[error("a stored value has an unknown format")]
    Format,
    #[error("password hashing failed: {0}")]
    Password(String),
}

/// Which personal field a value belongs to (part of the associated data and of the hash input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PiiField {
    Phone,
    IdCard,
}

impl PiiField {
    fn label(self) -> &'static str {
        match self {
            Self::Phone => "phone",
            Self::IdCard => "id_card",
        }
    }
}

/// The service's keys for personal data.
#[derive(Clone)]
pub struct Pii {
    cipher: Aes256Gcm,
    lookup_key: [u8; 32],
}

impl std::fmt::Debug for Pii {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pii(***)")
    }
}

fn derive(master: &[u8], label: &[u8]) -> Result<[u8; 32], CryptoError> {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(master)
        .map_err(|_| CryptoError::KeyLength(master.len()))?;
    mac.update(label);
    Ok(mac.finalize().into_bytes().into())
}

impl Pii {
    /// Keys derived from the 32-byte master key.
    pub fn from_master_key(master: &[u8]) -> Result<Self, CryptoError> {
        if master.len() != 32 {
            return Err(CryptoError::KeyLength(master.len()));
        }
        let enc = derive(master, ENCRYPTION_LABEL)?;
        let lookup_key = derive(master, LOOKUP_LABEL)?;
        let cipher =
            Aes256Gcm::new_from_slice(&enc).map_err(|_| CryptoError::KeyLength(enc.len()))?;
        Ok(Self { cipher, lookup_key })
    }

    fn aad(field: PiiField, owner: Uuid) -> String {
        format!("jifen.members/{}/{owner}", field.label())
    }

    /// Encrypts `clear`, the `field` of member `owner`.
    pub fn encrypt(
        &self,
        field: PiiField,
        owner: Uuid,
        clear: &str,
    ) -> Result<Vec<u8>, CryptoError> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = Nonce::from(nonce_bytes);
        let aad = Self::aad(field, owner);
        let ct = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: clear.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Encrypt)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts what [`Pii::encrypt`] produced for the same field and owner.
    pub fn decrypt(
        &self,
        field: PiiField,
        owner: Uuid,
        stored: &[u8],
    ) -> Result<String, CryptoError> {
        if stored.len() < 1 + NONCE_LEN + 16 || stored[0] != FORMAT_V1 {
            return Err(CryptoError::Format);
        }
        let nonce_bytes: [u8; NONCE_LEN] = stored[1..=NONCE_LEN]
            .try_into()
            .map_err(|_| CryptoError::Format)?;
        let nonce = Nonce::from(nonce_bytes);
        let aad = Self::aad(field, owner);
        let clear = self
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: &stored[1 + NONCE_LEN..],
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Decrypt)?;
        String::from_utf8(clear).map_err(|_| CryptoError::Decrypt)
    }

    /// The keyed hash of a normalized value (same input, same hash; different fields differ).
    pub fn lookup_hash(&self, field: PiiField, normalized: &str) -> Vec<u8> {
        // HMAC accepts keys of any length; 32 bytes cannot fail.
        let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(&self.lookup_key) else {
            return Vec::new();
        };
        mac.update(field.label().as_bytes());
        mac.update(&[0]);
        mac.update(normalized.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

/// An argon2id hash (PHC string) of `password`. CPU-heavy: call from a blocking thread.
pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| CryptoError::Password(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CryptoError::Password(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`. CPU-heavy: call from a blocking thread.
/// A malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pii() -> Pii {
        Pii::from_master_key(&[7u8; 32]).unwrap()
    }

    #[test]
    fn round_trip_with_fresh_nonces() {
        let p = pii();
        let owner = Uuid::now_v7();
        let a = p.encrypt(PiiField::Phone, owner, "13812345678").unwrap();
        let b = p.encrypt(PiiField::Phone, owner, "13812345678").unwrap();
        assert_ne!(a, b, "a fresh nonce per value");
        assert!(!a.windows(11).any(|w| w == b"13812345678"));
        assert_eq!(
            p.decrypt(PiiField::Phone, owner, &a).unwrap(),
            "13812345678"
        );
    }

    #[test]
    fn ciphertexts_are_bound_to_field_owner_and_key() {
        let p = pii();
        let owner = Uuid::now_v7();
        let ct = p
            .encrypt(PiiField::IdCard, owner, "11010519491231002X")
            .unwrap();
        assert!(p.decrypt(PiiField::Phone, owner, &ct).is_err());
        assert!(p.decrypt(PiiField::IdCard, Uuid::now_v7(), &ct).is_err());
        assert!(
            Pii::from_master_key(&[8u8; 32])
                .unwrap()
                .decrypt(PiiField::IdCard, owner, &ct)
                .is_err()
        );
        let mut tampered = ct.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(p.decrypt(PiiField::IdCard, owner, &tampered).is_err());
        assert!(matches!(
            p.decrypt(PiiField::IdCard, owner, &[2, 0]),
            Err(CryptoError::Format)
        ));
    }

    #[test]
    fn lookup_hashes_are_keyed_and_per_field() {
        let p = pii();
        let h = p.lookup_hash(PiiField::IdCard, "11010519491231002X");
        assert_eq!(h, p.lookup_hash(PiiField::IdCard, "11010519491231002X"));
        assert_eq!(h.len(), 32);
        assert_ne!(h, p.lookup_hash(PiiField::Phone, "11010519491231002X"));
        assert_ne!(
            h,
            Pii::from_master_key(&[8u8; 32])
                .unwrap()
                .lookup_hash(PiiField::IdCard, "11010519491231002X")
        );
    }

    #[test]
    fn master_key_must_be_32_bytes() {
        assert!(matches!(
            Pii::from_master_key(&[0u8; 16]),
            Err(CryptoError::KeyLength(16))
        ));
    }

    #[test]
    fn passwords() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "not a hash"));
    }
}
