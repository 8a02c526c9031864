//! Bearer tokens: missing, expired, for another audience, malformed; keys
//! from a JWKS URL, refetched (rate-limited) when a new `kid` shows up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use axum::Json;
use platform::auth::{Role, SigningKeys};
use platform::readstore::EmbeddedStore;
use query_api::{JwksConfig, VerifierSource};

use crate::fixture::{issuer_with, now_s, test_config, Fixture, AUDIENCE, ISSUER};

#[tokio::test]
async fn no_token_is_401_with_a_bearer_challenge() {
    let f = Fixture::new().await;
    let answer = f.get("/orders/o-1", None).await;
    answer.problem(401, "unauthorized", None);
    let challenge = answer.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
}

#[tokio::test]
async fn an_expired_token_is_401() {
    let f = Fixture::new().await;
    // Signed an hour ago: the 15-minute token is long expired.
    let old = f
        .issuer
        .sign_access("c-1", &[Role::Customer], now_s() - 3600)
        .unwrap();
    let answer = f.get("/customers/me/orders", Some(old.expose())).await;
    answer.problem(401, "unauthorized", None);
    assert!(answer.body["detail"].as_str().unwrap().contains("expired"));
    assert!(answer.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
}

#[tokio::test]
async fn a_token_for_another_audience_is_401() {
    let f = Fixture::new().await;
    let other = issuer_with(Arc::new(f.issuer.keys().clone()), "another-api");
    let token = other
        .sign_access("c-1", &[Role::Customer], now_s())
        .unwrap();
    let answer = f.get("/customers/me/orders", Some(token.expose())).await;
    answer.problem(401, "unauthorized", None);
    assert!(answer.body["detail"].as_str().unwrap().contains("audience"));
}

#[tokio::test]
async fn malformed_tokens_and_schemes_are_401() {
    let f = Fixture::new().await;
    f.get("/customers/me/orders", Some("not.a.jwt"))
        .await
        .problem(401, "unauthorized", None);
    let basic = axum::http::Request::get("/customers/me/orders")
        .header("authorization", "Basic dXNlcjpwdw==")
        .body(axum::body::Body::empty())
        .unwrap();
    f.send(basic).await.problem(401, "unauthorized", None);
    // A token of another issuer's keys.
    let stranger = issuer_with(Arc::new(SigningKeys::generate().unwrap()), AUDIENCE);
    let token = stranger
        .sign_access("c-1", &[Role::Admin], now_s())
        .unwrap();
    f.get("/customers/c-9/orders", Some(token.expose()))
        .await
        .problem(401, "unauthorized", None);
}

/// A JWKS server whose document can be swapped, counting fetches.
struct JwksServer {
    url: String,
    document: Arc<Mutex<serde_json::Value>>,
    fetches: Arc<AtomicUsize>,
}

async fn jwks_server(keys: &SigningKeys) -> JwksServer {
    let document = Arc::new(Mutex::new(keys.jwks()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (d, n) = (document.clone(), fetches.clone());
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            let (d, n) = (d.clone(), n.clone());
            async move {
                n.fetch_add(1, Ordering::SeqCst);
                Json(d.lock().unwrap().clone())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    JwksServer {
        url: format!("http://{addr}/.well-known/jwks.json"),
        document,
        fetches,
    }
}

async fn jwks_fixture(
    server: &JwksServer,
    keys: Arc<SigningKeys>,
    min_refresh: Duration,
) -> Fixture {
    let store = Arc::new(EmbeddedStore::in_memory().unwrap());
    projectors::generations::ensure(store.as_ref())
        .await
        .unwrap();
    for p in projectors::projections::all() {
        platform::readstore::ReadStore::ensure_tables(store.as_ref(), p.tables(), 1)
            .await
            .unwrap();
    }
    let source = VerifierSource::jwks(
        &server.url,
        ISSUER,
        AUDIENCE,
        JwksConfig {
            min_refresh,
            ..JwksConfig::default()
        },
    )
    .unwrap();
    Fixture::assemble(store, issuer_with(keys, AUDIENCE), source, test_config())
}

#[tokio::test]
async fn keys_come_from_the_jwks_url_and_a_rotation_is_picked_up() {
    let keys = SigningKeys::generate().unwrap();
    let server = jwks_server(&keys).await;
    let f = jwks_fixture(&server, Arc::new(keys.clone()), Duration::ZERO).await;
    let answer = f
        .get("/customers/me/orders", Some(&f.customer("c-1")))
        .await;
    answer.ok();
    f.get("/customers/me/orders", Some(&f.customer("c-1")))
        .await
        .ok();
    assert_eq!(server.fetches.load(Ordering::SeqCst), 1, "keys are cached");

    // The issuer rotates: the new kid is unknown until the JWKS is refetched.
    let rotated = keys.rotate().unwrap();
    *server.document.lock().unwrap() = rotated.jwks();
    let new_issuer = issuer_with(Arc::new(rotated), AUDIENCE);
    let token = new_issuer
        .sign_access("c-1", &[Role::Customer], now_s())
        .unwrap();
    f.get("/customers/me/orders", Some(token.expose()))
        .await
        .ok();
    assert_eq!(server.fetches.load(Ordering::SeqCst), 2);
    // Tokens of the previous key still pass (it is still published).
    f.get("/customers/me/orders", Some(&f.customer("c-1")))
        .await
        .ok();
    assert_eq!(server.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn unknown_kids_do_not_hammer_the_issuer() {
    let keys = SigningKeys::generate().unwrap();
    let server = jwks_server(&keys).await;
    let f = jwks_fixture(&server, Arc::new(keys.clone()), Duration::from_secs(60)).await;
    f.get("/customers/me/orders", Some(&f.customer("c-1")))
        .await
        .ok();
    for _ in 0..5 {
        let stranger = issuer_with(Arc::new(SigningKeys::generate().unwrap()), AUDIENCE);
        let token = stranger
            .sign_access("c-1", &[Role::Customer], now_s())
            .unwrap();
        f.get("/customers/me/orders", Some(token.expose()))
            .await
            .problem(401, "unauthorized", None);
    }
    assert_eq!(server.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unreachable_jwks_is_503_not_401() {
    let store = Arc::new(EmbeddedStore::in_memory().unwrap());
    let keys = Arc::new(SigningKeys::generate().unwrap());
    // Nothing listens on port 9 (discard) of loopback in the test sandbox.
    let source = VerifierSource::jwks(
        "http://127.0.0.1:9/.well-known/jwks.json",
        ISSUER,
        AUDIENCE,
        JwksConfig::default(),
    )
    .unwrap();
    let f = Fixture::assemble(store, issuer_with(keys, AUDIENCE), source, test_config());
    let answer = f
        .get("/customers/me/orders", Some(&f.customer("c-1")))
        .await;
    answer.problem(503, "unavailable", None);
    assert_eq!(
        answer.body["detail"],
        "temporarily unavailable, retry later"
    );
}

/// ADR 0022: a token or session on the revocation view is 401; a view
/// that could not catch up within its bound answers 503 for every token
/// (fail closed) — public routes are not affected.
#[tokio::test]
async fn revoked_tokens_and_sessions_are_401_and_a_stale_list_is_503() {
    use platform::auth::revocations::{Revocation, RevocationView};
    let view = Arc::new(RevocationView::new(Duration::from_secs(30)));
    let f = Fixture::with_revocations(Arc::clone(&view)).await;
    let token = f.customer("c-1");
    // Never caught up: no token is vouched for.
    f.get("/customers/me/orders", Some(&token))
        .await
        .problem(503, "unavailable", None);
    assert_eq!(f.get("/products?category=kitchen", None).await.status, 200);
    view.caught_up(std::time::Instant::now());
    assert_eq!(
        f.get("/customers/me/orders", Some(&token)).await.status,
        200
    );
    let jti = |t: &str| -> String {
        use base64::Engine as _;
        let claims = t.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["jti"].as_str().unwrap().to_owned()
    };
    view.insert(Revocation::access(jti(&token), now_s() + 900), now_s());
    let answer = f.get("/customers/me/orders", Some(&token)).await;
    answer.problem(401, "unauthorized", None);
    assert!(answer.body["detail"].as_str().unwrap().contains("revoked"));
    // A session: every token carrying its `sid`.
    let in_session = f
        .issuer
        .sign_access_in("c-2", &[Role::Customer], Some("family-1"), now_s())
        .unwrap();
    let token2 = in_session.expose();
    assert_eq!(
        f.get("/customers/me/orders", Some(token2)).await.status,
        200
    );
    view.insert(Revocation::session("family-1", now_s() + 900), now_s());
    f.get("/customers/me/orders", Some(token2))
        .await
        .problem(401, "unauthorized", None);
}
