//! Identity: EdDSA (Ed25519) JWTs signed by the gateway and verified by every service, and the
//! caller's [`Principal`] with its organization scope.
//!
//! Keys live in one directory: `<kid>.pub.pem` are accepted for verification (rotation: keep the
//! old public key until its tokens expire), `<kid>.key.pem` is the signing key of the gateway.
//! Scope is a materialized organization path (`/root-id/child-id/…/`): a role over an
//! organization covers every organization whose path starts with the role's path.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use uuid::Uuid;

/// Issuer and audience written into and required of every token.
pub const ISSUER: &str = "jifen";

/// A role name as it appears in tokens and in the public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    Admin,
    Secretary,
    Member,
    Evaluator,
    /// A jifen service acting for itself (e.g. the gateway refreshing a token).
    Service,
}

impl RoleName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Secretary => "secretary",
            Self::Member => "member",
            Self::Evaluator => "evaluator",
            Self::Service => "service",
        }
    }
}

/// One role over one organization subtree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleClaim {
    pub role: RoleName,
    pub org_id: Uuid,
    /// Materialized path of `org_id`, ending in `/`.
    pub org_path: String,
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Account id (or `service:<name>`, or `evaluator:<round id>`).
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<Uuid>,
    #[serde(default)]
    pub roles: Vec<RoleClaim>,
    /// The only round an evaluator token is good for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_id: Option<Uuid>,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// Token id, unique per token.
    pub jti: String,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub username: Option<String>,
    pub member_id: Option<Uuid>,
    pub roles: Vec<RoleClaim>,
    pub round_id: Option<Uuid>,
}

impl Principal {
    fn from_claims(c: Claims) -> Self {
        Self {
            subject: c.sub,
            username: c.username,
            member_id: c.member_id,
            roles: c.roles,
            round_id: c.round_id,
        }
    }

    /// Whether any of `roles` is held over an organization whose subtree contains `org_path`.
    pub fn covers(&self, roles: &[RoleName], org_path: &str) -> bool {
        self.roles
            .iter()
            .any(|r| roles.contains(&r.role) && org_path.starts_with(&r.org_path))
    }

    /// Admin over `org_path`.
    pub fn is_admin_over(&self, org_path: &str) -> bool {
        self.covers(&[RoleName::Admin], org_path)
    }

    /// Admin or secretary over `org_path`.
    pub fn manages(&self, org_path: &str) -> bool {
        self.covers(&[RoleName::Admin, RoleName::Secretary], org_path)
    }

    pub fn has_role(&self, role: RoleName) -> bool {
        self.roles.iter().any(|r| r.role == role)
    }

    /// The caller is the member `member_id`.
    pub fn is_member(&self, member_id: Uuid) -> bool {
        self.member_id == Some(member_id)
    }

    pub fn is_service(&self) -> bool {
        self.has_role(RoleName::Service)
    }

    /// The paths over which the caller holds any of `roles` (for scoped listings).
    pub fn scope_paths(&self, roles: &[RoleName]) -> Vec<&str> {
        self.roles
            .iter()
            .filter(|r| roles.contains(&r.role))
            .map(|r| r.org_path.as_str())
            .collect()
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("unknown signing key {0:?}")]
    UnknownKey(Option<String>),
    #[error("invalid token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("key material: {0}")]
    Key(String),
    #[error("reading keys: {0}")]
    Io(#[from] std::io::Error),
}

/// Verifies access tokens against every public key by `kid`.
///
/// A verified token is remembered (the whole token is the key) until its expiry, so a caller's many requests
/// cost one signature check: an EdDSA verification decompresses a curve point and was the
/// largest single cost of a request (see `make bench`). Only successful verifications are
/// remembered, never longer than the token's own `exp`, and the keys never change after start-up.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
    verified: std::sync::Arc<std::sync::Mutex<Verified>>,
}

/// Verified tokens (the whole token, compared in full on a hit): the principal and the token's
/// `exp`. Only tokens whose signature checked are inserted, so a caller cannot choose the keys;
/// a fast hasher (seeded per process) is enough, and cheaper than hashing each token with SHA-256.
type Verified = HashMap<Box<str>, (Principal, i64), foldhash::fast::RandomState>;

/// Most tokens remembered at once; the memory is cleared of expired ones, or emptied, when full.
const VERIFIED_CAPACITY: usize = 16_384;

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TokenVerifier {
    /// From `(kid, public key PEM)` pairs.
    pub fn from_pems<'a>(
        pems: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, AuthError> {
        let mut keys = HashMap::new();
        for (kid, pem) in pems {
            let key = DecodingKey::from_ed_pem(pem.as_bytes())
                .map_err(|e| AuthError::Key(format!("{kid}: {e}")))?;
            keys.insert(kid.to_owned(), key);
        }
        if keys.is_empty() {
            return Err(AuthError::Key("no public key configured".into()));
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[ISSUER]);
        validation.leeway = 5;
        Ok(Self {
            keys,
            validation,
            verified: std::sync::Arc::default(),
        })
    }

    /// Every `<kid>.pub.pem` in `dir`.
    pub fn from_dir(dir: &Path) -> Result<Self, AuthError> {
        let mut pems = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            if let Some(kid) = name.strip_suffix(".pub.pem") {
                pems.push((kid.to_owned(), std::fs::read_to_string(&path)?));
            }
        }
        Self::from_pems(pems.iter().map(|(k, p)| (k.as_str(), p.as_str())))
    }

    /// Verifies signature, issuer, audience and expiry (a token verified before and not yet
    /// expired is answered from memory).
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let now = chrono::Utc::now().timestamp();
        {
            let verified = self
                .verified
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((principal, exp)) = verified.get(token)
                && now < *exp
            {
                return Ok(principal.clone());
            }
        }
        let header = jsonwebtoken::decode_header(token)?;
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or_else(|| AuthError::UnknownKey(header.kid.clone()))?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation)?;
        let exp = data.claims.exp;
        let principal = Principal::from_claims(data.claims);
        let mut verified = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if verified.len() >= VERIFIED_CAPACITY {
            verified.retain(|_, (_, exp)| now < *exp);
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(token.into(), (principal.clone(), exp));
        Ok(principal)
    }
}

/// Signs access tokens (the gateway; tests).
#[derive(Clone)]
pub struct TokenSigner {
    kid: String,
    key: EncodingKey,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .finish()
    }
}

impl TokenSigner {
    pub fn from_pem(kid: &str, private_pem: &str) -> Result<Self, AuthError> {
        let key = EncodingKey::from_ed_pem(private_pem.as_bytes())
            .map_err(|e| AuthError::Key(format!("{kid}: {e}")))?;
        Ok(Self {
            kid: kid.to_owned(),
            key,
        })
    }

    /// `<dir>/<kid>.key.pem`.
    pub fn from_dir(dir: &Path, kid: &str) -> Result<Self, AuthError> {
        let pem = std::fs::read_to_string(dir.join(format!("{kid}.key.pem")))?;
        Self::from_pem(kid, &pem)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A token for `principal`, valid for `ttl_seconds`.
    pub fn sign(&self, principal: &Principal, ttl_seconds: i64) -> Result<String, AuthError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: principal.subject.clone(),
            username: principal.username.clone(),
            member_id: principal.member_id,
            roles: principal.roles.clone(),
            round_id: principal.round_id,
            iss: ISSUER.into(),
            aud: ISSUER.into(),
            iat: now,
            exp: now + ttl_seconds,
            jti: Uuid::now_v7().to_string(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.key)?)
    }

    /// A short-lived token for a service acting for itself.
    pub fn service_token(&self, service: &str) -> Result<String, AuthError> {
        let principal = Principal {
            subject: format!("service:{service}"),
            username: None,
            member_id: None,
            roles: vec![RoleClaim {
                role: RoleName::Service,
                org_id: Uuid::nil(),
                org_path: "/".into(),
            }],
            round_id: None,
        };
        self.sign(&principal, 300)
    }
}

/// A fresh Ed25519 key pair as `(private PKCS#8 PEM, public SPKI PEM)`.
pub fn generate_key_pair() -> Result<(String, String), AuthError> {
    use ed25519_dalek::pkcs8::{
        EncodePrivateKey as _, EncodePublicKey as _, spki::der::pem::LineEnding,
    };
    let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let private = signing
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| AuthError::Key(e.to_string()))?;
    let public = signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| AuthError::Key(e.to_string()))?;
    Ok((private.to_string(), public))
}

/// Writes `<kid>.key.pem` and `<kid>.pub.pem` into `dir` unless the private key exists already.
pub fn ensure_key_pair(dir: &Path, kid: &str) -> Result<(), AuthError> {
    let private = dir.join(format!("{kid}.key.pem"));
    if private.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let (sk, pk) = generate_key_pair()?;
    write_private(&private, sk.as_bytes())?;
    std::fs::write(dir.join(format!("{kid}.pub.pem")), pk)?;
    Ok(())
}

/// Writes a new private key readable by its owner only (`0600`), whatever the process's umask:
/// the file is created with that mode, never widened after the key is in it.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn principal(roles: Vec<RoleClaim>) -> Principal {
        Principal {
            subject: "a".into(),
            username: None,
            member_id: None,
            roles,
            round_id: None,
        }
    }

    #[test]
    fn the_private_key_is_written_for_its_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        ensure_key_pair(dir.path(), "k").unwrap();
        let mode = |name: &str| {
            std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("k.key.pem"), 0o600, "private key");
        // A second call keeps the key it finds.
        let before = std::fs::read(dir.path().join("k.key.pem")).unwrap();
        ensure_key_pair(dir.path(), "k").unwrap();
        assert_eq!(std::fs::read(dir.path().join("k.key.pem")).unwrap(), before);
    }

    #[test]
    fn token_round_trip_and_rotation_by_kid() {
        let (sk1, pk1) = generate_key_pair().unwrap();
        let (sk2, pk2) = generate_key_pair().unwrap();
        let verifier =
            TokenVerifier::from_pems([("k1", pk1.as_str()), ("k2", pk2.as_str())]).unwrap();
        let p = principal(vec![RoleClaim {
            role: RoleName::Admin,
            org_id: Uuid::nil(),
            org_path: "/r/".into(),
        }]);
        for (kid, sk) in [("k1", &sk1), ("k2", &sk2)] {
            let token = TokenSigner::from_pem(kid, sk)
                .unwrap()
                .sign(&p, 60)
                .unwrap();
            assert_eq!(verifier.verify(&token).unwrap(), p);
        }
        // A key the verifier does not know is refused.
        let (sk3, _) = generate_key_pair().unwrap();
        let token = TokenSigner::from_pem("k3", &sk3)
            .unwrap()
            .sign(&p, 60)
            .unwrap();
        assert!(matches!(
            verifier.verify(&token),
            Err(AuthError::UnknownKey(_))
        ));
        // A key signed under a known kid with the wrong key is refused.
        let token = TokenSigner::from_pem("k1", &sk2)
            .unwrap()
            .sign(&p, 60)
            .unwrap();
        assert!(matches!(
            verifier.verify(&token),
            Err(AuthError::Invalid(_))
        ));
    }

    #[test]
    fn expired_token_is_refused() {
        let (sk, pk) = generate_key_pair().unwrap();
        let verifier = TokenVerifier::from_pems([("k", pk.as_str())]).unwrap();
        let token = TokenSigner::from_pem("k", &sk)
            .unwrap()
            .sign(&principal(vec![]), -60)
            .unwrap();
        assert!(verifier.verify(&token).is_err());
    }

    #[test]
    fn a_remembered_token_answers_the_same_and_a_forged_one_is_still_refused() {
        let (sk, pk) = generate_key_pair().unwrap();
        let verifier = TokenVerifier::from_pems([("k", pk.as_str())]).unwrap();
        let token = TokenSigner::from_pem("k", &sk)
            .unwrap()
            .sign(&principal(vec![]), 60)
            .unwrap();
        let first = verifier.verify(&token).unwrap();
        assert_eq!(verifier.verify(&token).unwrap(), first);
        // A clone shares the memory; a changed signature is a different token and is checked.
        let mut forged = token.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert!(verifier.clone().verify(&forged).is_err());
        // A token signed with another key is refused even after a good one was remembered.
        let (other_sk, _) = generate_key_pair().unwrap();
        let other = TokenSigner::from_pem("k", &other_sk)
            .unwrap()
            .sign(&principal(vec![]), 60)
            .unwrap();
        assert!(verifier.verify(&other).is_err());
    }

    #[test]
    fn scope_is_a_path_prefix() {
        let p = principal(vec![RoleClaim {
            role: RoleName::Secretary,
            org_id: Uuid::nil(),
            org_path: "/r/a/".into(),
        }]);
        assert!(p.manages("/r/a/"));
        assert!(p.manages("/r/a/g/"));
        assert!(!p.manages("/r/b/"));
        assert!(!p.manages("/r/"));
        assert!(!p.is_admin_over("/r/a/"));
    }
}
