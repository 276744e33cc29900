//! Protection of personal data and passwords.
//!
//! * Phone and ID card numbers are encrypted with AES-256-GCM, a fresh random 96-bit nonce per
//!   value, and associated data binding the ciphertext to its field and its member (a ciphertext
//!   copied onto another row or column does not decrypt). Stored form: `0x02 || key id (4 bytes)
//!   || nonce || ct+tag`; values written before key rotation existed are `0x01 || nonce ||
//!   ct+tag` and are tried against every known key.
//! * A keyed hash (HMAC-SHA256) of the normalized value serves look-ups and the uniqueness of ID
//!   cards without storing anything an attacker could brute-force offline without the key.
//! * Both keys are derived from one 32-byte master key (`JIFEN_PII_KEY`) with HMAC-SHA256 under
//!   distinct labels; there is no default key. The key id is derived the same way, so it says
//!   nothing about the key.
//! * **Rotation** (docs/operations.md, "Rotating the personal-data key"): the service is given
//!   a new current key and the previous ones (`JIFEN_PII_PREVIOUS_KEYS`). It writes under the
//!   current key only, reads under any, and checks the uniqueness of ID cards against the hashes
//!   of every key; `jifen-members rekey-pii` then rewrites every stored value under the current
//!   key, after which the previous keys can be dropped.
//! * Passwords are hashed with argon2id (PHC string with its salt and parameters).

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Version byte of the stored ciphertext format without a key id (before rotation existed).
const FORMAT_V1: u8 = 1;
/// Version byte of the stored ciphertext format with the key id.
const FORMAT_V2: u8 = 2;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const ENCRYPTION_LABEL: &[u8] = b"jifen.members.pii.encryption.v1";
const LOOKUP_LABEL: &[u8] = b"jifen.members.pii.lookup.v1";
const KEY_ID_LABEL: &[u8] = b"jifen.members.pii.key-id.v1";

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
    #[error("a stored value is encrypted under a key this service was not given")]
    UnknownKey,
    #[error("two of the PII keys given are the same key")]
    DuplicateKey,
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
    /// The field's name, as in the API and in the associated data.
    pub fn label(self) -> &'static str {
        match self {
            Self::Phone => "phone",
            Self::IdCard => "id_card",
        }
    }
}

/// The keys derived from one master key.
#[derive(Clone)]
struct PiiKey {
    id: [u8; KEY_ID_LEN],
    cipher: Aes256Gcm,
    lookup_key: [u8; 32],
}

impl PiiKey {
    fn derive_from(master: &[u8]) -> Result<Self, CryptoError> {
        if master.len() != 32 {
            return Err(CryptoError::KeyLength(master.len()));
        }
        let enc = derive(master, ENCRYPTION_LABEL)?;
        let lookup_key = derive(master, LOOKUP_LABEL)?;
        let id_bytes = derive(master, KEY_ID_LABEL)?;
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&id_bytes[..KEY_ID_LEN]);
        let cipher =
            Aes256Gcm::new_from_slice(&enc).map_err(|_| CryptoError::KeyLength(enc.len()))?;
        Ok(Self {
            id,
            cipher,
            lookup_key,
        })
    }

    fn decrypt(&self, nonce: &[u8; NONCE_LEN], msg: &[u8], aad: &str) -> Option<Vec<u8>> {
        self.cipher
            .decrypt(
                &Nonce::from(*nonce),
                Payload {
                    msg,
                    aad: aad.as_bytes(),
                },
            )
            .ok()
    }

    fn lookup_hash(&self, field: PiiField, normalized: &str) -> Vec<u8> {
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

/// The service's keys for personal data: the current one, which writes, and the previous ones,
/// which only read (during a rotation).
#[derive(Clone)]
pub struct Pii {
    current: PiiKey,
    previous: Vec<PiiKey>,
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
        Self::with_previous(master, std::iter::empty())
    }

    /// Keys derived from the current 32-byte master key and from the previous ones, which
    /// still decrypt and still count for the uniqueness of ID cards until every value has been
    /// rewritten under the current key ([`Pii::is_current`]).
    pub fn with_previous<'a>(
        current: &[u8],
        previous: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Self, CryptoError> {
        let current = PiiKey::derive_from(current)?;
        let mut ids = vec![current.id];
        let mut keys = Vec::new();
        for master in previous {
            let key = PiiKey::derive_from(master)?;
            if ids.contains(&key.id) {
                return Err(CryptoError::DuplicateKey);
            }
            ids.push(key.id);
            keys.push(key);
        }
        Ok(Self {
            current,
            previous: keys,
        })
    }

    /// Every key, the current one first.
    fn keys(&self) -> impl Iterator<Item = &PiiKey> {
        std::iter::once(&self.current).chain(&self.previous)
    }

    /// The first bytes of a value stored under the current key (its format and key id): a
    /// stored value that does not start with them needs rewriting.
    pub fn current_prefix(&self) -> Vec<u8> {
        let mut prefix = vec![FORMAT_V2];
        prefix.extend_from_slice(&self.current.id);
        prefix
    }

    /// Whether `stored` is encrypted under the current key.
    pub fn is_current(&self, stored: &[u8]) -> bool {
        stored.starts_with(&self.current_prefix())
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
            .current
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: clear.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Encrypt)?;
        let mut out = Vec::with_capacity(1 + KEY_ID_LEN + NONCE_LEN + ct.len());
        out.push(FORMAT_V2);
        out.extend_from_slice(&self.current.id);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts what [`Pii::encrypt`] produced for the same field and owner, under any of the
    /// keys (a value of the first format, which has no key id, is tried against each).
    pub fn decrypt(
        &self,
        field: PiiField,
        owner: Uuid,
        stored: &[u8],
    ) -> Result<String, CryptoError> {
        let aad = Self::aad(field, owner);
        let nonce_at = |from: usize| -> Result<[u8; NONCE_LEN], CryptoError> {
            stored
                .get(from..from + NONCE_LEN)
                .and_then(|n| n.try_into().ok())
                .ok_or(CryptoError::Format)
        };
        let clear = match stored.first() {
            Some(&FORMAT_V1) if stored.len() >= 1 + NONCE_LEN + TAG_LEN => {
                let nonce = nonce_at(1)?;
                let msg = &stored[1 + NONCE_LEN..];
                self.keys()
                    .find_map(|k| k.decrypt(&nonce, msg, &aad))
                    .ok_or(CryptoError::Decrypt)?
            }
            Some(&FORMAT_V2) if stored.len() >= 1 + KEY_ID_LEN + NONCE_LEN + TAG_LEN => {
                let id = &stored[1..=KEY_ID_LEN];
                let key = self
                    .keys()
                    .find(|k| k.id == id)
                    .ok_or(CryptoError::UnknownKey)?;
                let nonce = nonce_at(1 + KEY_ID_LEN)?;
                key.decrypt(&nonce, &stored[1 + KEY_ID_LEN + NONCE_LEN..], &aad)
                    .ok_or(CryptoError::Decrypt)?
            }
            _ => return Err(CryptoError::Format),
        };
        String::from_utf8(clear).map_err(|_| CryptoError::Decrypt)
    }

    /// The keyed hash of a normalized value under the current key (same input, same hash;
    /// different fields differ): what is stored.
    pub fn lookup_hash(&self, field: PiiField, normalized: &str) -> Vec<u8> {
        self.current.lookup_hash(field, normalized)
    }

    /// The keyed hashes of a normalized value under every key, the current one first: what a
    /// look-up searches for while values hashed under a previous key remain.
    pub fn lookup_hashes(&self, field: PiiField, normalized: &str) -> Vec<Vec<u8>> {
        self.keys()
            .map(|k| k.lookup_hash(field, normalized))
            .collect()
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

    /// A value of the first format (no key id), as the service wrote it before rotation.
    fn encrypt_v1(master: &[u8], field: PiiField, owner: Uuid, clear: &str) -> Vec<u8> {
        let key = PiiKey::derive_from(master).unwrap();
        let nonce = [3u8; NONCE_LEN];
        let aad = Pii::aad(field, owner);
        let ct = key
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: clear.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .unwrap();
        [&[FORMAT_V1][..], &nonce, &ct].concat()
    }

    #[test]
    fn rotation_reads_under_every_key_and_writes_under_the_current_one() {
        let (old, new) = ([7u8; 32], [9u8; 32]);
        let owner = Uuid::now_v7();
        let before = Pii::from_master_key(&old).unwrap();
        let under_old = before
            .encrypt(PiiField::Phone, owner, "13812345678")
            .unwrap();
        let first_format = encrypt_v1(&old, PiiField::Phone, owner, "13812345678");
        assert_eq!(
            before
                .decrypt(PiiField::Phone, owner, &first_format)
                .unwrap(),
            "13812345678"
        );

        let rotating = Pii::with_previous(&new, [&old[..]]).unwrap();
        for stored in [&under_old, &first_format] {
            assert_eq!(
                rotating.decrypt(PiiField::Phone, owner, stored).unwrap(),
                "13812345678"
            );
            assert!(!rotating.is_current(stored));
        }
        let rewritten = rotating
            .encrypt(PiiField::Phone, owner, "13812345678")
            .unwrap();
        assert!(rotating.is_current(&rewritten));
        assert!(before.is_current(&under_old));

        // Once the previous key is dropped, only values under the new one decrypt.
        let after = Pii::from_master_key(&new).unwrap();
        assert_eq!(
            after.decrypt(PiiField::Phone, owner, &rewritten).unwrap(),
            "13812345678"
        );
        assert!(matches!(
            after.decrypt(PiiField::Phone, owner, &under_old),
            Err(CryptoError::UnknownKey)
        ));
        assert!(matches!(
            after.decrypt(PiiField::Phone, owner, &first_format),
            Err(CryptoError::Decrypt)
        ));

        // Look-ups search under both keys, the current first.
        let hashes = rotating.lookup_hashes(PiiField::IdCard, "11010519491231002X");
        assert_eq!(
            hashes,
            vec![
                after.lookup_hash(PiiField::IdCard, "11010519491231002X"),
                before.lookup_hash(PiiField::IdCard, "11010519491231002X"),
            ]
        );
        assert!(matches!(
            Pii::with_previous(&new, [&new[..]]),
            Err(CryptoError::DuplicateKey)
        ));
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
