//! The auth module end to end: the store on both adapters, issuing and
//! verifying, every forgery we guard against, refresh rotation and reuse,
//! logout, JWKS and key persistence. Time is always passed in.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::store::authenticate;
use super::*;
use crate::config::Secret;

const ISS: &str = "https://auth.quickstore.test";
const AUD: &str = "quickstore";
/// 2027-01-15: an arbitrary fixed "now".
const NOW: i64 = 1_800_000_000;
const ACCESS_TTL: i64 = 15 * 60;

struct Fixture {
    keys: Arc<SigningKeys>,
    store: Arc<MemoryCredentialStore>,
    issuer: TokenIssuer,
    verifier: Verifier,
}

fn fixture() -> Fixture {
    let keys = Arc::new(SigningKeys::generate().unwrap());
    let store = Arc::new(MemoryCredentialStore::new());
    let issuer = TokenIssuer::new(keys.clone(), store.clone(), ISS, AUD);
    let verifier = issuer.verifier().unwrap();
    Fixture {
        keys,
        store,
        issuer,
        verifier,
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn claims_json(now: i64) -> Value {
    json!({
        "iss": ISS, "aud": AUD, "sub": "c-1", "roles": ["customer"],
        "iat": now, "nbf": now, "exp": now + ACCESS_TTL, "jti": "j-1"
    })
}

fn at_header(kid: &str) -> Header {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    header.typ = Some("at+jwt".into());
    header
}

/// Signs arbitrary claims with the fixture's real key.
fn sign_raw(keys: &SigningKeys, header: &Header, claims: &Value) -> String {
    jsonwebtoken::encode(header, claims, keys.encoding_key()).unwrap()
}

fn refused(result: Result<TokenPair, AuthError>) -> AuthError {
    result.expect_err("expected a refusal")
}

fn invalid_reason(result: Result<Claims, AuthError>) -> String {
    match result {
        Err(AuthError::TokenInvalid(reason)) => reason,
        other => panic!("expected TokenInvalid, got {other:?}"),
    }
}

// ---------------------------------------------------------------- roles

#[test]
fn roles_are_lower_case_everywhere() {
    for role in Role::ALL {
        assert_eq!(role.to_string().parse::<Role>().unwrap(), role);
        assert_eq!(
            serde_json::to_value(role).unwrap(),
            Value::String(role.to_string())
        );
    }
    assert_eq!(Role::Courier.to_string(), "courier");
    assert!("Admin".parse::<Role>().is_err());
    assert!("root"
        .parse::<Role>()
        .unwrap_err()
        .to_string()
        .contains("root"));
}

// ---------------------------------------------------------------- store

/// Both adapters; the temp dir keeps the redb file alive.
fn stores() -> Vec<(&'static str, Arc<dyn CredentialStore>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let embedded = EmbeddedCredentialStore::open(&dir.path().join("auth.redb")).unwrap();
    vec![
        (
            "memory",
            Arc::new(MemoryCredentialStore::new()),
            tempfile::tempdir().unwrap(),
        ),
        ("embedded", Arc::new(embedded), dir),
    ]
}

#[test]
fn store_registers_refuses_duplicate_emails_case_insensitively_and_looks_up() {
    for (name, store, _dir) in stores() {
        store
            .register("Ada@Example.com", "c-1", "$argon2id$x", &[Role::Customer])
            .unwrap();
        assert_eq!(
            store.register("ada@example.COM ", "c-2", "$argon2id$y", &[]),
            Err(AuthError::EmailTaken),
            "{name}"
        );
        assert!(
            matches!(
                store.register("other@example.com", "c-1", "$argon2id$y", &[]),
                Err(AuthError::Store(_))
            ),
            "{name}: one login per customer"
        );
        let by_email = store.by_email("ADA@example.com").unwrap().unwrap();
        assert_eq!(by_email.email, "ada@example.com", "{name}");
        assert_eq!(by_email.customer_id, "c-1", "{name}");
        assert_eq!(by_email.phc, "$argon2id$x", "{name}");
        assert_eq!(by_email.roles, vec![Role::Customer], "{name}");
        assert_eq!(store.by_customer("c-1").unwrap(), Some(by_email), "{name}");
        assert_eq!(
            store.by_email("nobody@example.com").unwrap(),
            None,
            "{name}"
        );
        assert_eq!(store.by_customer("c-9").unwrap(), None, "{name}");

        assert!(store
            .set_roles("c-1", &[Role::Customer, Role::Admin])
            .unwrap());
        assert!(!store.set_roles("c-9", &[Role::Admin]).unwrap(), "{name}");
        assert_eq!(
            store.by_email("ada@example.com").unwrap().unwrap().roles,
            vec![Role::Customer, Role::Admin],
            "{name}"
        );
    }
}

fn record(family: &str, expires_at: i64) -> RefreshRecord {
    RefreshRecord {
        family: family.into(),
        customer_id: "c-1".into(),
        roles: vec![Role::Customer],
        expires_at,
        used: false,
    }
}

#[test]
fn store_refresh_records_are_single_use_and_families_revocable() {
    for (name, store, _dir) in stores() {
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        store.insert_refresh(&a, &record("f-1", NOW + 100)).unwrap();
        store.insert_refresh(&b, &record("f-1", NOW + 100)).unwrap();
        store.insert_refresh(&c, &record("f-2", NOW + 10)).unwrap();

        assert!(
            matches!(store.consume_refresh(&a, NOW).unwrap(), RefreshUse::Fresh(r) if !r.used),
            "{name}"
        );
        assert!(store.refresh_record(&a).unwrap().unwrap().used, "{name}");
        assert!(
            matches!(
                store.consume_refresh(&a, NOW).unwrap(),
                RefreshUse::Reused(_)
            ),
            "{name}"
        );
        assert_eq!(
            store.consume_refresh(&[9u8; 32], NOW).unwrap(),
            RefreshUse::Unknown,
            "{name}"
        );
        assert_eq!(
            store.consume_refresh(&c, NOW + 10).unwrap(),
            RefreshUse::Expired,
            "{name}"
        );

        store.revoke_family("f-1", NOW + 100).unwrap();
        assert_eq!(
            store.consume_refresh(&b, NOW).unwrap(),
            RefreshUse::Revoked,
            "{name}"
        );
        assert_eq!(
            store.insert_refresh(&[4u8; 32], &record("f-1", NOW + 100)),
            Err(AuthError::TokenRevoked),
            "{name}: no new token in a revoked family"
        );
    }
}

#[test]
fn store_revocation_list_and_purge() {
    for (name, store, _dir) in stores() {
        store.revoke_access("j-1", NOW + 60).unwrap();
        store.revoke_access("j-2", NOW + 6000).unwrap();
        store
            .insert_refresh(&[1u8; 32], &record("f-1", NOW + 60))
            .unwrap();
        store
            .insert_refresh(&[2u8; 32], &record("f-2", NOW + 6000))
            .unwrap();
        store.revoke_family("f-9", NOW + 60).unwrap();
        assert!(store.is_revoked("j-1").unwrap(), "{name}");
        assert!(!store.is_revoked("j-3").unwrap(), "{name}");

        // Revoked ids outlive `exp` by the maximum leeway.
        assert_eq!(store.purge_expired(NOW + 60).unwrap(), 2, "{name}");
        assert!(store.is_revoked("j-1").unwrap(), "{name}");
        assert_eq!(store.purge_expired(NOW + 61 + 30).unwrap(), 1, "{name}");
        assert!(!store.is_revoked("j-1").unwrap(), "{name}");
        assert!(store.is_revoked("j-2").unwrap(), "{name}");
        assert!(
            store.refresh_record(&[1u8; 32]).unwrap().is_none(),
            "{name}"
        );
        assert!(
            store.refresh_record(&[2u8; 32]).unwrap().is_some(),
            "{name}"
        );
    }
}

#[test]
fn embedded_store_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("auth.redb");
    {
        let store = EmbeddedCredentialStore::open(&path).unwrap();
        store
            .register("ada@example.com", "c-1", "$argon2id$x", &[Role::Admin])
            .unwrap();
        store.revoke_access("j-1", NOW).unwrap();
        assert!(
            EmbeddedCredentialStore::open(&path).is_err(),
            "a second handle on the file is refused"
        );
    }
    let store = EmbeddedCredentialStore::open(&path).unwrap();
    assert_eq!(
        store.by_customer("c-1").unwrap().unwrap().roles,
        vec![Role::Admin]
    );
    assert!(store.is_revoked("j-1").unwrap());
}

#[test]
fn credential_debug_never_shows_the_hash() {
    let hasher = PasswordHasher::fast_params();
    let phc = hasher.hash(&Secret::new("correct horse battery")).unwrap();
    let store = MemoryCredentialStore::new();
    store
        .register("ada@example.com", "c-1", &phc, &[Role::Customer])
        .unwrap();
    let credential = store.by_email("ada@example.com").unwrap().unwrap();
    let shown = format!("{credential:?} {store:?}");
    assert!(!shown.contains(&phc), "{shown}");
    assert!(!shown.contains("argon2id"), "{shown}");
    assert!(shown.contains("ada@example.com"), "{shown}");
}

#[test]
fn authenticate_gives_one_answer_for_unknown_email_and_wrong_password() {
    let hasher = PasswordHasher::fast_params();
    let store = MemoryCredentialStore::new();
    let password = Secret::new("correct horse battery");
    store
        .register(
            "ada@example.com",
            "c-1",
            &hasher.hash(&password).unwrap(),
            &[Role::Customer],
        )
        .unwrap();
    let ok = authenticate(&store, &hasher, "Ada@Example.com", &password).unwrap();
    assert_eq!(ok.customer_id, "c-1");
    let wrong = authenticate(
        &store,
        &hasher,
        "ada@example.com",
        &Secret::new("wrong horse battery"),
    );
    let unknown = authenticate(&store, &hasher, "bob@example.com", &password);
    assert_eq!(wrong, Err(AuthError::InvalidCredentials));
    assert_eq!(unknown, Err(AuthError::InvalidCredentials));
}

// ---------------------------------------------------------------- tokens

#[test]
fn issued_tokens_verify_with_their_claims() {
    let f = fixture();
    let pair = f
        .issuer
        .issue("c-1", &[Role::Customer, Role::Courier], NOW)
        .unwrap();
    assert_eq!(pair.expires_in, ACCESS_TTL);
    let claims = f
        .verifier
        .verify(pair.access_token.expose(), NOW, None)
        .unwrap();
    assert_eq!(claims.iss, ISS);
    assert_eq!(claims.aud, AUD);
    assert_eq!(claims.sub, "c-1");
    assert_eq!(claims.roles, vec![Role::Customer, Role::Courier]);
    assert!(claims.has_role(Role::Courier) && !claims.has_role(Role::Admin));
    assert_eq!((claims.iat, claims.nbf), (NOW, NOW));
    assert_eq!(claims.exp, NOW + ACCESS_TTL);
    assert!(!claims.jti.is_empty());

    let header = jsonwebtoken::decode_header(pair.access_token.expose()).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), Some(f.keys.kid()));
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));

    let other = f.issuer.issue("c-1", &[Role::Customer], NOW).unwrap();
    let other_claims = f
        .verifier
        .verify(other.access_token.expose(), NOW, None)
        .unwrap();
    assert_ne!(claims.jti, other_claims.jti, "jti is unique per token");
}

#[test]
fn token_pair_debug_hides_both_tokens() {
    let f = fixture();
    let pair = f.issuer.issue("c-1", &[Role::Customer], NOW).unwrap();
    let shown = format!("{pair:?} {:?} {:?}", f.issuer, f.keys);
    assert!(!shown.contains(pair.access_token.expose()), "{shown}");
    assert!(!shown.contains(pair.refresh_token.expose()), "{shown}");
    // ...while the JSON answer carries them.
    let body = serde_json::to_value(&pair).unwrap();
    assert_eq!(body["refresh_token"], pair.refresh_token.expose());
}

#[test]
fn expired_tokens_are_refused_after_the_leeway() {
    let f = fixture();
    let pair = f.issuer.issue("c-1", &[Role::Customer], NOW).unwrap();
    let token = pair.access_token.expose();
    let exp = NOW + ACCESS_TTL;
    assert!(
        f.verifier.verify(token, exp + 29, None).is_ok(),
        "within leeway"
    );
    assert_eq!(
        f.verifier.verify(token, exp + 30, None),
        Err(AuthError::TokenExpired)
    );
    let strict = f.verifier.clone().with_leeway(Duration::ZERO);
    assert_eq!(
        strict.verify(token, exp, None),
        Err(AuthError::TokenExpired)
    );
    assert!(strict.verify(token, exp - 1, None).is_ok());
    // Leeway is capped at 30 s.
    let lax = f.verifier.clone().with_leeway(Duration::from_secs(3600));
    assert_eq!(
        lax.verify(token, exp + 30, None),
        Err(AuthError::TokenExpired)
    );
}

#[test]
fn tokens_from_the_future_are_not_yet_valid() {
    let f = fixture();
    let pair = f.issuer.issue("c-1", &[Role::Customer], NOW + 600).unwrap();
    let token = pair.access_token.expose();
    assert_eq!(
        f.verifier.verify(token, NOW, None),
        Err(AuthError::TokenNotYetValid)
    );
    assert!(
        f.verifier.verify(token, NOW + 600 - 30, None).is_ok(),
        "skew"
    );
    assert_eq!(
        f.verifier.verify(token, NOW + 600 - 31, None),
        Err(AuthError::TokenNotYetValid)
    );
}

#[test]
fn wrong_issuer_and_wrong_audience_are_refused() {
    let f = fixture();
    let pair = f.issuer.issue("c-1", &[Role::Customer], NOW).unwrap();
    let token = pair.access_token.expose();
    let other_iss = Verifier::from_keys(&f.keys, "https://evil.test", AUD).unwrap();
    assert!(invalid_reason(other_iss.verify(token, NOW, None)).contains("issuer"));
    let other_aud = Verifier::from_keys(&f.keys, ISS, "payments").unwrap();
    assert!(invalid_reason(other_aud.verify(token, NOW, None)).contains("audience"));

    // And the same with tokens that claim another issuer/audience.
    let mut claims = claims_json(NOW);
    claims["iss"] = json!("https://evil.test");
    let token = sign_raw(&f.keys, &at_header(f.keys.kid()), &claims);
    assert!(invalid_reason(f.verifier.verify(&token, NOW, None)).contains("issuer"));
    let mut claims = claims_json(NOW);
    claims["aud"] = json!("payments");
    let token = sign_raw(&f.keys, &at_header(f.keys.kid()), &claims);
    assert!(invalid_reason(f.verifier.verify(&token, NOW, None)).contains("audience"));
}

#[test]
fn a_tampered_payload_breaks_the_signature() {
    let f = fixture();
    let pair = f.issuer.issue("c-1", &[Role::Customer], NOW).unwrap();
    let parts: Vec<&str> = pair.access_token.expose().split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["roles"] = json!(["customer", "admin"]);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(claims.to_string().as_bytes()),
        parts[2]
    );
    assert!(invalid_reason(f.verifier.verify(&forged, NOW, None)).contains("signature"));
}

#[test]
fn a_tampered_signature_is_refused() {
    let f = fixture();
    let pair = f.issuer.issue("c-1", &[Role::Customer], NOW).unwrap();
    let parts: Vec<&str> = pair.access_token.expose().split('.').collect();
    let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    assert_eq!(signature.len(), 64, "ES256 signatures are r || s");
    signature[10] ^= 0x01;
    let forged = format!("{}.{}.{}", parts[0], parts[1], b64(&signature));
    assert!(invalid_reason(f.verifier.verify(&forged, NOW, None)).contains("signature"));
    // Truncated and empty signatures too.
    let truncated = format!("{}.{}.{}", parts[0], parts[1], b64(&signature[..32]));
    invalid_reason(f.verifier.verify(&truncated, NOW, None));
    let empty = format!("{}.{}.", parts[0], parts[1]);
    invalid_reason(f.verifier.verify(&empty, NOW, None));
}

#[test]
fn a_token_verified_before_is_still_checked_for_time_and_revocation() {
    // The verifier keeps what a token's bytes proved (signature, claims)
    // and checks the rest on every call.
    let f = fixture();
    let pair = f.issuer.issue("c-1", &[Role::Customer], NOW).unwrap();
    let token = pair.access_token.expose();
    let claims = f.verifier.verify(token, NOW, None).unwrap();
    assert_eq!(f.verifier.verify(token, NOW + 1, None), Ok(claims.clone()));
    assert_eq!(
        f.verifier.verify(token, NOW + ACCESS_TTL + 30, None),
        Err(AuthError::TokenExpired)
    );
    assert_eq!(
        f.verifier.verify(token, NOW - 3600, None),
        Err(AuthError::TokenNotYetValid)
    );
    f.store.revoke_access(&claims.jti, claims.exp).unwrap();
    assert_eq!(
        f.verifier.verify(token, NOW + 2, Some(f.store.as_ref())),
        Err(AuthError::TokenRevoked)
    );
    // One bit off a token verified before is another token: checked in full.
    let parts: Vec<&str> = token.split('.').collect();
    let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    signature[0] ^= 0x01;
    let forged = format!("{}.{}.{}", parts[0], parts[1], b64(&signature));
    assert!(invalid_reason(f.verifier.verify(&forged, NOW, None)).contains("signature"));
    // And a verifier of other keys (a new JWKS) has seen nothing.
    let stranger = fixture();
    assert!(invalid_reason(stranger.verifier.verify(token, NOW, None)).contains("kid"));
}

#[test]
fn alg_none_is_refused() {
    let f = fixture();
    let claims = b64(claims_json(NOW).to_string().as_bytes());
    for header in [
        json!({"alg": "none"}),
        json!({"alg": "none", "typ": "at+jwt", "kid": f.keys.kid()}),
        json!({"alg": "None", "typ": "at+jwt", "kid": f.keys.kid()}),
    ] {
        let token = format!("{}.{claims}.", b64(header.to_string().as_bytes()));
        invalid_reason(f.verifier.verify(&token, NOW, None));
    }
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    let f = fixture();
    let jwk = f.keys.current();
    let mut point = vec![0x04];
    point.extend(URL_SAFE_NO_PAD.decode(&jwk.x).unwrap());
    point.extend(URL_SAFE_NO_PAD.decode(&jwk.y).unwrap());
    let jwks_text = f.keys.jwks().to_string();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(f.keys.kid().to_owned());
    header.typ = Some("at+jwt".into());
    // Every form of "the public key" an attacker might try as the secret.
    for secret in [
        point.as_slice(),
        jwk.x.as_bytes(),
        jwks_text.as_bytes(),
        jwk.to_json().to_string().as_bytes(),
    ] {
        let token = jsonwebtoken::encode(
            &header,
            &claims_json(NOW),
            &EncodingKey::from_secret(secret),
        )
        .unwrap();
        let reason = invalid_reason(f.verifier.verify(&token, NOW, None));
        assert!(reason.contains("HS256"), "{reason}");
    }
}

#[test]
fn rs256_and_other_algorithms_are_refused() {
    let f = fixture();
    let claims = b64(claims_json(NOW).to_string().as_bytes());
    for alg in ["RS256", "PS256", "ES384", "EdDSA", "ES256K"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": f.keys.kid()});
        let token = format!(
            "{}.{claims}.{}",
            b64(header.to_string().as_bytes()),
            b64(&[7u8; 64])
        );
        invalid_reason(f.verifier.verify(&token, NOW, None));
    }
}

#[test]
fn unknown_or_missing_kid_is_refused() {
    let f = fixture();
    // A perfectly valid token from someone else's key...
    let stranger = Arc::new(SigningKeys::generate().unwrap());
    let theirs = TokenIssuer::new(stranger, Arc::new(MemoryCredentialStore::new()), ISS, AUD)
        .issue("c-1", &[Role::Admin], NOW)
        .unwrap();
    let reason = invalid_reason(f.verifier.verify(theirs.access_token.expose(), NOW, None));
    assert!(reason.contains("unknown kid"), "{reason}");
    // ...and one of ours without a kid.
    let mut header = at_header(f.keys.kid());
    header.kid = None;
    let token = sign_raw(&f.keys, &header, &claims_json(NOW));
    assert!(invalid_reason(f.verifier.verify(&token, NOW, None)).contains("kid"));
    // ...and a stranger's key claiming our kid fails on the signature.
    let stranger = SigningKeys::generate().unwrap();
    let token = sign_raw(&stranger, &at_header(f.keys.kid()), &claims_json(NOW));
    assert!(invalid_reason(f.verifier.verify(&token, NOW, None)).contains("signature"));
}

#[test]
fn signed_but_malformed_claims_are_refused() {
    let f = fixture();
    let header = at_header(f.keys.kid());
    // Type confusion: exp/nbf as strings must not be skipped.
    for (claim, value) in [
        ("exp", json!("never")),
        ("nbf", json!("99999999999")),
        ("roles", json!(["root"])),
        ("sub", json!(42)),
    ] {
        let mut claims = claims_json(NOW);
        claims[claim] = value;
        let token = sign_raw(&f.keys, &header, &claims);
        invalid_reason(f.verifier.verify(&token, NOW, None));
    }
    for claim in ["exp", "nbf", "sub", "iss", "aud", "jti"] {
        let mut claims = claims_json(NOW);
        claims.as_object_mut().unwrap().remove(claim);
        let token = sign_raw(&f.keys, &header, &claims);
        invalid_reason(f.verifier.verify(&token, NOW, None));
    }
    // Not an access token (typ JWT) and critical extensions.
    let mut plain = at_header(f.keys.kid());
    plain.typ = Some("JWT".into());
    let token = sign_raw(&f.keys, &plain, &claims_json(NOW));
    assert!(invalid_reason(f.verifier.verify(&token, NOW, None)).contains("typ"));
    let mut crit = at_header(f.keys.kid());
    crit.crit = Some(vec!["exp".into()]);
    let token = sign_raw(&f.keys, &crit, &claims_json(NOW));
    invalid_reason(f.verifier.verify(&token, NOW, None));
    // Garbage.
    for junk in ["", "a.b", "a.b.c", "....", &"a".repeat(10_000)] {
        invalid_reason(f.verifier.verify(junk, NOW, None));
    }
}

// ---------------------------------------------------------------- refresh

#[test]
fn refresh_rotates_once_and_reuse_revokes_the_family() {
    let f = fixture();
    let first = f.issuer.issue("c-1", &[Role::Customer], NOW).unwrap();

    let second = f.issuer.refresh(&first.refresh_token, NOW + 60).unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    let claims = f
        .verifier
        .verify(second.access_token.expose(), NOW + 60, None)
        .unwrap();
    assert_eq!(claims.sub, "c-1");
    assert_eq!(claims.iat, NOW + 60);

    // The old token comes back: someone has a copy. Family revoked...
    assert_eq!(
        refused(f.issuer.refresh(&first.refresh_token, NOW + 120)),
        AuthError::RefreshReused
    );
    // ...so the legitimate-looking newer token is dead too.
    assert_eq!(
        refused(f.issuer.refresh(&second.refresh_token, NOW + 180)),
        AuthError::TokenRevoked
    );
    assert_eq!(
        refused(f.issuer.refresh(&first.refresh_token, NOW + 240)),
        AuthError::TokenRevoked
    );

    // Other sessions of the same customer are untouched.
    let other = f.issuer.issue("c-1", &[Role::Customer], NOW).unwrap();
    assert!(f.issuer.refresh(&other.refresh_token, NOW + 60).is_ok());
}

#[test]
fn refresh_refuses_unknown_and_expired_tokens() {
    let f = fixture();
    assert_eq!(
        refused(f.issuer.refresh(&super::refresh::generate(), NOW)),
        AuthError::RefreshUnknown
    );
    let issuer = f
        .issuer
        .clone()
        .with_ttls(Duration::from_secs(60), Duration::from_secs(3600));
    let pair = issuer.issue("c-1", &[Role::Customer], NOW).unwrap();
    assert_eq!(pair.expires_in, 60);
    assert_eq!(
        refused(issuer.refresh(&pair.refresh_token, NOW + 3600)),
        AuthError::TokenExpired
    );
}

#[test]
fn refresh_carries_the_current_roles() {
    let f = fixture();
    f.store
        .register(
            "ada@example.com",
            "c-1",
            "$argon2id$x",
            &[Role::Customer, Role::Admin],
        )
        .unwrap();
    let pair = f
        .issuer
        .issue("c-1", &[Role::Customer, Role::Admin], NOW)
        .unwrap();
    f.store.set_roles("c-1", &[Role::Customer]).unwrap();
    let next = f.issuer.refresh(&pair.refresh_token, NOW + 60).unwrap();
    let claims = f
        .verifier
        .verify(next.access_token.expose(), NOW + 60, None)
        .unwrap();
    assert_eq!(claims.roles, vec![Role::Customer]);
}

#[test]
fn logout_revokes_the_access_token_and_the_session() {
    let f = fixture();
    let pair = f.issuer.issue("c-1", &[Role::Customer], NOW).unwrap();
    let claims = f
        .verifier
        .verify(pair.access_token.expose(), NOW, Some(f.store.as_ref()))
        .unwrap();

    f.issuer
        .logout(&pair.refresh_token, &claims.jti, claims.exp, NOW + 10)
        .unwrap();

    assert_eq!(
        f.verifier
            .verify(pair.access_token.expose(), NOW + 20, Some(f.store.as_ref())),
        Err(AuthError::TokenRevoked)
    );
    // Without the list the signature alone still holds (why services that
    // must honour logout pass one).
    assert!(f
        .verifier
        .verify(pair.access_token.expose(), NOW + 20, None)
        .is_ok());
    assert_eq!(
        refused(f.issuer.refresh(&pair.refresh_token, NOW + 20)),
        AuthError::TokenRevoked
    );
    // Logging out with a lost refresh token still revokes the access token.
    let other = f.issuer.issue("c-1", &[Role::Customer], NOW).unwrap();
    let other_claims = f
        .verifier
        .verify(other.access_token.expose(), NOW, None)
        .unwrap();
    f.issuer
        .logout(
            &super::refresh::generate(),
            &other_claims.jti,
            other_claims.exp,
            NOW,
        )
        .unwrap();
    assert!(f.store.is_revoked(&other_claims.jti).unwrap());
}

#[test]
fn the_whole_flow_runs_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedCredentialStore::open(&dir.path().join("auth.redb")).unwrap());
    let keys = Arc::new(SigningKeys::generate().unwrap());
    let issuer = TokenIssuer::new(keys, store.clone(), ISS, AUD);
    let verifier = issuer.verifier().unwrap();
    let first = issuer.issue("c-1", &[Role::Customer], NOW).unwrap();
    let second = issuer.refresh(&first.refresh_token, NOW + 1).unwrap();
    assert_eq!(
        refused(issuer.refresh(&first.refresh_token, NOW + 2)),
        AuthError::RefreshReused
    );
    assert_eq!(
        refused(issuer.refresh(&second.refresh_token, NOW + 3)),
        AuthError::TokenRevoked
    );
    // The reuse ended the whole session (ADR 0022): its access tokens too.
    assert_eq!(
        verifier.verify(second.access_token.expose(), NOW + 3, Some(store.as_ref())),
        Err(AuthError::TokenRevoked)
    );
    // A new session, then a logout.
    let third = issuer.issue("c-1", &[Role::Customer], NOW + 4).unwrap();
    let claims = verifier
        .verify(third.access_token.expose(), NOW + 4, Some(store.as_ref()))
        .unwrap();
    issuer
        .logout(&third.refresh_token, &claims.jti, claims.exp, NOW + 5)
        .unwrap();
    assert_eq!(
        verifier.verify(third.access_token.expose(), NOW + 6, Some(store.as_ref())),
        Err(AuthError::TokenRevoked)
    );
}

// ---------------------------------------------------------------- keys

#[test]
fn a_verifier_from_the_jwks_json_verifies_issued_tokens() {
    let f = fixture();
    let served = serde_json::to_string(&f.keys.jwks()).unwrap();
    let remote = Verifier::from_jwks_json(&served, ISS, AUD).unwrap();
    assert_eq!(remote.kids().collect::<Vec<_>>(), vec![f.keys.kid()]);
    let pair = f.issuer.issue("c-1", &[Role::Auditor], NOW).unwrap();
    let claims = remote
        .verify(pair.access_token.expose(), NOW, None)
        .unwrap();
    assert_eq!(claims.roles, vec![Role::Auditor]);
}

#[test]
fn jwks_parsing_skips_foreign_keys_and_rejects_broken_ones() {
    let f = fixture();
    let mut jwks = f.keys.jwks();
    let keys = jwks["keys"].as_array_mut().unwrap();
    keys.push(json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "rsa-1"}));
    keys.push(json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac-1"}));
    let verifier = Verifier::from_jwks(&jwks, ISS, AUD).unwrap();
    assert_eq!(verifier.kids().count(), 1);

    let mut broken = f.keys.jwks();
    broken["keys"][0]["x"] = json!("AAAA");
    assert!(matches!(
        Verifier::from_jwks(&broken, ISS, AUD),
        Err(AuthError::Key(_))
    ));
    assert!(Verifier::from_jwks(&json!({"keys": []}), ISS, AUD).is_err());
    assert!(Verifier::from_jwks_json("{}", ISS, AUD).is_err());
    assert!(Verifier::from_jwks_json("nope", ISS, AUD).is_err());
}

#[test]
fn rotated_keys_keep_old_tokens_valid_until_the_previous_key_is_dropped() {
    let old = Arc::new(SigningKeys::generate().unwrap());
    let store: Arc<dyn CredentialStore> = Arc::new(MemoryCredentialStore::new());
    let before = TokenIssuer::new(old.clone(), store.clone(), ISS, AUD)
        .issue("c-1", &[Role::Customer], NOW)
        .unwrap();

    let rotated = Arc::new(old.rotate().unwrap());
    let issuer = TokenIssuer::new(rotated.clone(), store, ISS, AUD);
    let after = issuer.issue("c-1", &[Role::Customer], NOW).unwrap();
    let verifier = Verifier::from_jwks(&rotated.jwks(), ISS, AUD).unwrap();
    assert!(verifier
        .verify(before.access_token.expose(), NOW, None)
        .is_ok());
    assert!(verifier
        .verify(after.access_token.expose(), NOW, None)
        .is_ok());
    // A refresh token from before the rotation gets a token under the new key.
    let refreshed = issuer.refresh(&before.refresh_token, NOW + 1).unwrap();
    let header = jsonwebtoken::decode_header(refreshed.access_token.expose()).unwrap();
    assert_eq!(header.kid.as_deref(), Some(rotated.kid()));

    let retired =
        Verifier::from_keys(&rotated.as_ref().clone().without_previous(), ISS, AUD).unwrap();
    assert!(
        invalid_reason(retired.verify(before.access_token.expose(), NOW, None))
            .contains("unknown kid")
    );
}

#[test]
fn load_or_create_persists_and_reloads_the_same_kid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing-key.pem");
    let created = SigningKeys::load_or_create(&path).unwrap();
    let token = TokenIssuer::new(
        Arc::new(created.clone()),
        Arc::new(MemoryCredentialStore::new()),
        ISS,
        AUD,
    )
    .issue("c-1", &[Role::Customer], NOW)
    .unwrap();

    // "Restart": a new process loads the file and still accepts the token.
    let reloaded = SigningKeys::load_or_create(&path).unwrap();
    assert_eq!(reloaded.kid(), created.kid());
    let verifier = Verifier::from_keys(&reloaded, ISS, AUD).unwrap();
    assert!(verifier
        .verify(token.access_token.expose(), NOW, None)
        .is_ok());

    // A corrupt file is an error, not a silent new key.
    std::fs::write(&path, "garbage").unwrap();
    assert!(matches!(
        SigningKeys::load_or_create(&path),
        Err(AuthError::Key(_))
    ));
}

/// One DER TLV at `pos`: (tag, content start, content length).
fn der_tlv(der: &[u8], pos: usize) -> (u8, usize, usize) {
    let tag = der[pos];
    let first = der[pos + 1];
    if first < 0x80 {
        (tag, pos + 2, usize::from(first))
    } else {
        let n = usize::from(first & 0x7f);
        let len = der[pos + 2..pos + 2 + n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (tag, pos + 2 + n, len)
    }
}

#[test]
fn sec1_pem_as_openssl_writes_it_is_accepted() {
    // `openssl ecparam -genkey` writes SEC1 (`EC PRIVATE KEY`); make one by
    // unwrapping our PKCS#8: SEQ { INT 0, SEQ { OIDs }, OCTET STRING { SEC1 } }.
    let keys = SigningKeys::generate().unwrap();
    let pkcs8 = pem::parse(keys.to_pem().expose()).unwrap();
    let der = pkcs8.contents();
    let (tag, body, _) = der_tlv(der, 0);
    assert_eq!(tag, 0x30);
    let (tag, start, len) = der_tlv(der, body);
    assert_eq!(tag, 0x02, "version");
    let (tag, start, len) = der_tlv(der, start + len);
    assert_eq!(tag, 0x30, "algorithm identifier");
    let (tag, start, len) = der_tlv(der, start + len);
    assert_eq!(tag, 0x04, "private key octet string");
    let sec1 = &der[start..start + len];
    let sec1_pem = pem::encode(&pem::Pem::new("EC PRIVATE KEY", sec1.to_vec()));
    let loaded = SigningKeys::from_pem(&Secret::new(sec1_pem)).unwrap();
    assert_eq!(loaded.kid(), keys.kid());
}
