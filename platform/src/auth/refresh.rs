//! Refresh tokens: 32 random bytes, base64url without padding (43
//! characters). Opaque on purpose — unlike the access token, only the auth
//! service ever reads one, and it has to look it up anyway to detect reuse
//! and revocation, so a signed format would add nothing.
//!
//! The store keeps only SHA-256 of the token: 256 random bits need no salt
//! or slow hash to resist guessing, and a leaked store yields nothing a
//! client could present.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::config::Secret;

/// Random bytes per token.
pub const TOKEN_BYTES: usize = 32;

/// A new refresh token from the thread-local CSPRNG (ChaCha, seeded and
/// periodically reseeded from the OS).
pub fn generate() -> Secret {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(URL_SAFE_NO_PAD.encode(bytes))
}

/// The store key of a token.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_url_safe_chars_and_distinct() {
        let a = generate();
        let b = generate();
        assert_eq!(a.expose().len(), 43);
        assert!(a
            .expose()
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a, b);
        assert_ne!(digest(a.expose()), digest(b.expose()));
        assert_eq!(digest(a.expose()), digest(a.expose()));
    }
}
