//! Password hashing: argon2id, stored as a PHC string
//! (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
//!
//! Why argon2id: it is memory-hard, so a stolen credential table costs an
//! attacker memory per guess, not just cycles (OWASP's first choice). The PHC
//! string carries its own algorithm, parameters and salt, so hashes made with
//! older parameters keep verifying after the defaults change.

use std::fmt;
use std::sync::OnceLock;

use argon2::password_hash::PasswordHasher as _;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordVerifier as _, Version};

use super::AuthError;
use crate::config::Secret;

/// Shortest accepted password, in characters.
pub const MIN_LEN: usize = 10;
/// Longest accepted password, in characters: a cap on the work one login
/// request can ask for, far above what a passphrase needs.
pub const MAX_LEN: usize = 128;

/// Checks the password rules (length in characters, not bytes, so a
/// passphrase in any script gets the same allowance).
pub fn check_rules(password: &Secret) -> Result<(), AuthError> {
    let len = password.expose().chars().count();
    if (MIN_LEN..=MAX_LEN).contains(&len) {
        Ok(())
    } else {
        Err(AuthError::WeakPassword(format!(
            "a password must be {MIN_LEN} to {MAX_LEN} characters long (this one has {len})"
        )))
    }
}

/// Hashes and verifies passwords with argon2id. Cheap to clone.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A hash of a password nobody has, verified against when the e-mail is
    /// unknown so that answer takes as long as a wrong password.
    dummy: std::sync::Arc<OnceLock<String>>,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("m_cost", &self.params.m_cost())
            .field("t_cost", &self.params.t_cost())
            .field("p_cost", &self.params.p_cost())
            .finish()
    }
}

impl Default for PasswordHasher {
    /// argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane: the
    /// OWASP minimum), for production.
    fn default() -> Self {
        Self::with_params(Params::default())
    }
}

impl PasswordHasher {
    /// The smallest parameters argon2 allows (8 KiB, 1 pass): for tests
    /// only, where the default's tens of milliseconds (seconds in debug
    /// builds) per hash add up. Hashes made with these verify anywhere,
    /// and are as weak as they are fast.
    pub fn fast_params() -> Self {
        let params =
            Params::new(Params::MIN_M_COST, Params::MIN_T_COST, 1, None).unwrap_or(Params::DEFAULT);
        Self::with_params(params)
    }

    fn with_params(params: Params) -> Self {
        Self {
            params,
            dummy: std::sync::Arc::new(OnceLock::new()),
        }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Checks the rules, then hashes with a fresh random salt. Blocks for
    /// the whole argon2 computation.
    pub fn hash(&self, password: &Secret) -> Result<String, AuthError> {
        check_rules(password)?;
        self.argon2()
            .hash_password(password.expose().as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| AuthError::Store(format!("hashing the password failed: {e}")))
    }

    /// Whether `password` matches `phc`. The PHC string's own parameters
    /// are used, so old hashes keep working when the defaults change. A
    /// malformed PHC string or an over-long password is simply `false`.
    pub fn verify(&self, password: &Secret, phc: &str) -> bool {
        if password.expose().chars().count() > MAX_LEN {
            return false;
        }
        match PasswordHash::new(phc) {
            Ok(parsed) => self
                .argon2()
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Burns the time of one verification, for a login whose e-mail is
    /// unknown (so the response time does not reveal which e-mails exist).
    pub fn verify_dummy(&self, password: &Secret) {
        let dummy = self.dummy.get_or_init(|| {
            self.argon2()
                .hash_password(b"no account has this password")
                .map(|h| h.to_string())
                .unwrap_or_default()
        });
        let _ = self.verify(password, dummy);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify_round_trips_and_rejects_a_wrong_password() {
        let hasher = PasswordHasher::fast_params();
        let password = Secret::new("correct horse battery");
        let phc = hasher.hash(&password).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        assert!(hasher.verify(&password, &phc));
        assert!(!hasher.verify(&Secret::new("correct horse battery!"), &phc));
        // The PHC string carries its parameters: the default hasher verifies
        // a hash made with the fast ones.
        assert!(PasswordHasher::default().verify(&password, &phc));
    }

    #[test]
    fn two_hashes_of_one_password_differ_by_salt() {
        let hasher = PasswordHasher::fast_params();
        let password = Secret::new("correct horse battery");
        assert_ne!(
            hasher.hash(&password).unwrap(),
            hasher.hash(&password).unwrap()
        );
    }

    #[test]
    fn malformed_phc_is_false_not_an_error() {
        let hasher = PasswordHasher::fast_params();
        assert!(!hasher.verify(&Secret::new("correct horse battery"), "not a phc"));
        assert!(!hasher.verify(&Secret::new("correct horse battery"), ""));
    }

    #[test]
    fn rules_name_the_limits() {
        let hasher = PasswordHasher::fast_params();
        for bad in ["short", &"x".repeat(MAX_LEN + 1)] {
            match hasher.hash(&Secret::new(bad)) {
                Err(AuthError::WeakPassword(reason)) => {
                    assert!(reason.contains("10 to 128 characters"), "{reason}")
                }
                other => panic!("expected WeakPassword, got {other:?}"),
            }
        }
        // Characters, not bytes: ten 3-byte characters are enough.
        assert!(check_rules(&Secret::new("ééééééééé€")).is_ok());
        assert!(check_rules(&Secret::new("x".repeat(MAX_LEN))).is_ok());
    }

    #[test]
    fn debug_shows_parameters_only() {
        let shown = format!("{:?}", PasswordHasher::fast_params());
        assert!(shown.contains("m_cost"), "{shown}");
    }
}
