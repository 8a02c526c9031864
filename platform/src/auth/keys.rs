//! The access-token signing key: ECDSA P-256 with SHA-256 (JWS `ES256`).
//!
//! Why ES256 (asymmetric) and not HS256 (a shared secret): every service
//! verifies tokens locally, and with HMAC each of them would hold the key
//! that *mints* tokens — one compromised read-only service could then forge
//! an admin. With ES256 services hold only the public key, published as a
//! JWKS. P-256 over Ed25519: it is the JOSE curve every gateway, JWT library
//! and cloud KMS supports, and signatures and keys stay small (64-byte
//! signatures, 32-byte coordinates).
//!
//! The key id (`kid`) is the RFC 7638 JWK thumbprint of the public key:
//! derived, never stored, so it is stable across restarts and two different
//! keys can never share one.
//!
//! Rotation: a [`SigningKeys`] signs with its current key and publishes the
//! current *and* previous public keys, so tokens signed just before a
//! rotation stay valid until they expire (one access TTL later the previous
//! key can be dropped).

use std::fmt;
use std::io::Write as _;
use std::path::Path;

use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::AuthError;
use crate::config::Secret;

/// PEM label of an unencrypted PKCS#8 private key (what we write).
const PKCS8_LABEL: &str = "PRIVATE KEY";
/// PEM label of a SEC1 EC private key (what `openssl ecparam -genkey` writes;
/// accepted on input).
const SEC1_LABEL: &str = "EC PRIVATE KEY";
/// Bytes of one P-256 coordinate.
const COORDINATE_LEN: usize = 32;

/// One public verification key, as published in the JWKS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    pub kty: String,
    pub crv: String,
    /// base64url of the 32-byte big-endian x coordinate.
    pub x: String,
    /// base64url of the 32-byte big-endian y coordinate.
    pub y: String,
    pub kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

impl PublicJwk {
    /// From an uncompressed SEC1 point (`0x04 || x || y`).
    fn from_point(point: &[u8]) -> Result<Self, AuthError> {
        let coordinates = match point.split_first() {
            Some((0x04, rest)) if rest.len() == 2 * COORDINATE_LEN => rest,
            _ => return Err(AuthError::Key("not an uncompressed P-256 point".into())),
        };
        let (x, y) = coordinates.split_at(COORDINATE_LEN);
        let x = URL_SAFE_NO_PAD.encode(x);
        let y = URL_SAFE_NO_PAD.encode(y);
        Ok(Self {
            kty: "EC".into(),
            crv: "P-256".into(),
            kid: thumbprint(&x, &y),
            x,
            y,
            alg: Some("ES256".into()),
            use_: Some("sig".into()),
        })
    }

    /// Whether this JWK is a P-256 signature key usable for ES256 (an absent
    /// `alg` or `use` is allowed, as RFC 7517 makes both optional).
    pub fn is_es256(&self) -> bool {
        self.kty == "EC"
            && self.crv == "P-256"
            && self.alg.as_deref().is_none_or(|a| a == "ES256")
            && self.use_.as_deref().is_none_or(|u| u == "sig")
    }

    /// The verification key, after checking both coordinates are 32 bytes.
    pub(crate) fn decoding_key(&self) -> Result<DecodingKey, AuthError> {
        for (name, value) in [("x", &self.x), ("y", &self.y)] {
            let bytes = URL_SAFE_NO_PAD
                .decode(value)
                .map_err(|e| AuthError::Key(format!("kid {}: bad {name}: {e}", self.kid)))?;
            if bytes.len() != COORDINATE_LEN {
                return Err(AuthError::Key(format!(
                    "kid {}: {name} must be {COORDINATE_LEN} bytes, got {}",
                    self.kid,
                    bytes.len()
                )));
            }
        }
        DecodingKey::from_ec_components(&self.x, &self.y)
            .map_err(|e| AuthError::Key(format!("kid {}: {e}", self.kid)))
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// RFC 7638 thumbprint of a P-256 key: SHA-256 over the required members in
/// lexicographic order, base64url.
fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The current signing key and the public keys still accepted.
#[derive(Clone)]
pub struct SigningKeys {
    /// PKCS#8 v1 DER of the current private key.
    pkcs8: Vec<u8>,
    encoding: EncodingKey,
    current: PublicJwk,
    previous: Vec<PublicJwk>,
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys")
            .field("kid", &self.current.kid)
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.kid).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn key_err(context: &str) -> impl Fn(aws_lc_rs::error::KeyRejected) -> AuthError + '_ {
    move |e| AuthError::Key(format!("{context}: {e}"))
}

impl SigningKeys {
    /// A fresh random key pair.
    pub fn generate() -> Result<Self, AuthError> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| AuthError::Key("generating a P-256 key failed".into()))?;
        Self::from_pair(&pair)
    }

    fn from_pair(pair: &EcdsaKeyPair) -> Result<Self, AuthError> {
        let pkcs8 = pair
            .to_pkcs8v1()
            .map_err(|_| AuthError::Key("encoding the key as PKCS#8 failed".into()))?
            .as_ref()
            .to_vec();
        let current = PublicJwk::from_point(pair.public_key().as_ref())?;
        Ok(Self {
            encoding: EncodingKey::from_ec_der(&pkcs8),
            pkcs8,
            current,
            previous: Vec::new(),
        })
    }

    /// From a PEM private key: PKCS#8 (`PRIVATE KEY`) or SEC1
    /// (`EC PRIVATE KEY`), P-256 only.
    pub fn from_pem(pem: &Secret) -> Result<Self, AuthError> {
        let block = pem::parse(pem.expose())
            .map_err(|e| AuthError::Key(format!("not a PEM private key: {e}")))?;
        if block.tag() != PKCS8_LABEL && block.tag() != SEC1_LABEL {
            return Err(AuthError::Key(format!(
                "expected a `{PKCS8_LABEL}` or `{SEC1_LABEL}` PEM block, found `{}`",
                block.tag()
            )));
        }
        let pair =
            EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, block.contents())
                .map_err(key_err("not a P-256 private key"))?;
        Self::from_pair(&pair)
    }

    /// The current private key as PKCS#8 PEM.
    pub fn to_pem(&self) -> Secret {
        let block = pem::Pem::new(PKCS8_LABEL, self.pkcs8.clone());
        Secret::new(pem::encode_config(
            &block,
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        ))
    }

    /// Loads the PEM key at `path`, or creates one there (mode 0600 on
    /// Unix) if there is none, so `quickstore dev` keeps issued tokens valid
    /// across restarts. Creation is atomic and never overwrites: the key is
    /// written to a temporary file and hard-linked into place, so a crash
    /// leaves no half-written key and two processes racing end up with the
    /// same one.
    pub fn load_or_create(path: &Path) -> Result<Self, AuthError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                warn_if_readable_by_others(path);
                return Self::from_pem(&Secret::new(text));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(AuthError::Key(format!("reading {}: {e}", path.display())));
            }
        }
        let keys = Self::generate()?;
        let io = |what: &str, e: std::io::Error| {
            AuthError::Key(format!("{what} {}: {e}", path.display()))
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| io("creating the directory of", e))?;
        }
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        let tmp = std::path::PathBuf::from(tmp_name);
        let written = (|| {
            let mut file = private_file(&tmp)?;
            file.write_all(keys.to_pem().expose().as_bytes())?;
            file.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io("writing", e));
        }
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                tracing::info!(path = %path.display(), kid = %keys.kid(), "created a new token signing key");
                Ok(keys)
            }
            // Someone else created it first: theirs wins.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).map_err(|e| io("reading", e))?;
                Self::from_pem(&Secret::new(text))
            }
            Err(e) => Err(io("creating", e)),
        }
    }

    /// The key id tokens are signed under.
    pub fn kid(&self) -> &str {
        &self.current.kid
    }

    /// The current public key.
    pub fn current(&self) -> &PublicJwk {
        &self.current
    }

    /// Every accepted public key, current first.
    pub fn public_keys(&self) -> impl Iterator<Item = &PublicJwk> {
        std::iter::once(&self.current).chain(&self.previous)
    }

    /// Also accepts tokens signed by `keys` (e.g. the key before the last
    /// rotation, kept for one access TTL). A key equal to the current one
    /// is ignored; non-ES256 keys are refused.
    pub fn with_previous(
        mut self,
        keys: impl IntoIterator<Item = PublicJwk>,
    ) -> Result<Self, AuthError> {
        for key in keys {
            if !key.is_es256() {
                return Err(AuthError::Key(format!(
                    "kid {} is not an ES256 key",
                    key.kid
                )));
            }
            key.decoding_key()?;
            if key.kid != self.current.kid && self.previous.iter().all(|k| k.kid != key.kid) {
                self.previous.push(key);
            }
        }
        Ok(self)
    }

    /// A new current key; the old current key becomes the first previous
    /// one (still published, no longer used to sign).
    pub fn rotate(&self) -> Result<Self, AuthError> {
        let next = Self::generate()?;
        let previous = std::iter::once(self.current.clone())
            .chain(self.previous.iter().cloned())
            .collect::<Vec<_>>();
        next.with_previous(previous)
    }

    /// Drops the previous keys (once every token they signed has expired).
    pub fn without_previous(mut self) -> Self {
        self.previous.clear();
        self
    }

    /// The JWKS document served at `/jwks.json`:
    /// `{"keys":[{"kty":"EC","crv":"P-256","x":…,"y":…,"kid":…,"alg":"ES256","use":"sig"}, …]}`.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({
            "keys": self.public_keys().map(PublicJwk::to_json).collect::<Vec<_>>()
        })
    }

    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// A signing key others can read can mint tokens for anyone. Warn rather
/// than refuse: mounted secrets (e.g. Kubernetes' default 0644) are often
/// readable by the group inside a single-user container.
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{mode:o}"),
                    "token signing key is readable by other users; chmod 600 it"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_keeps_the_kid() {
        let keys = SigningKeys::generate().unwrap();
        let pem = keys.to_pem();
        assert!(pem.expose().starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let again = SigningKeys::from_pem(&pem).unwrap();
        assert_eq!(again.kid(), keys.kid());
        assert_eq!(again.current(), keys.current());
        assert!(!format!("{keys:?}").contains(&pem.expose()[30..60]));
    }

    #[test]
    fn kid_is_the_rfc7638_thumbprint() {
        // RFC 7638 §3.1 style check on a fixed key: recompute by hand.
        let keys = SigningKeys::generate().unwrap();
        let jwk = keys.current();
        let canonical = format!(
            "{{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"{}\",\"y\":\"{}\"}}",
            jwk.x, jwk.y
        );
        assert_eq!(
            jwk.kid,
            URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(&jwk.x).unwrap().len(), 32);
    }

    #[test]
    fn jwks_has_the_documented_shape() {
        let keys = SigningKeys::generate().unwrap();
        let jwks = keys.jwks();
        let key = &jwks["keys"][0];
        assert_eq!(key["kty"], "EC");
        assert_eq!(key["crv"], "P-256");
        assert_eq!(key["alg"], "ES256");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["kid"], keys.kid());
        assert!(
            key.get("d").is_none(),
            "private part must never be published"
        );
    }

    #[test]
    fn refuses_garbage_and_other_pem_blocks() {
        for pem in [
            "not pem at all",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            assert!(matches!(
                SigningKeys::from_pem(&Secret::new(pem)),
                Err(AuthError::Key(_))
            ));
        }
    }

    #[test]
    fn load_or_create_persists_the_key_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("signing.pem");
        let first = SigningKeys::load_or_create(&path).unwrap();
        let second = SigningKeys::load_or_create(&path).unwrap();
        assert_eq!(first.kid(), second.kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{mode:o}");
        }
        // No temporary file left behind.
        let entries = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(entries, 1);
    }

    #[test]
    fn rotation_publishes_current_then_previous() {
        let old = SigningKeys::generate().unwrap();
        let new = old.rotate().unwrap();
        assert_ne!(new.kid(), old.kid());
        let kids: Vec<_> = new.public_keys().map(|k| k.kid.clone()).collect();
        assert_eq!(kids, vec![new.kid().to_owned(), old.kid().to_owned()]);
        assert_eq!(new.clone().without_previous().public_keys().count(), 1);
    }
}
