//! No secret in the logs: the whole suite's logs (our crates at TRACE,
//! libraries at DEBUG) go to memory, and this case drives every secret
//! through the real stack — passwords (right and wrong), access and
//! refresh tokens (fresh, rotated, expired), the webhook secret, card
//! numbers, the signing key, Kafka SASL and CQL passwords in the settings —
//! then greps the captured text for each value.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{ensure, Result};
use command_api::gateway::webhook::{sign, WebhookEvent};
use platform::config::{Secret, Settings};
use platform::testing::TestAdapter;
use reqwest::{Method, StatusCode};
use schemas::Context;
use serde_json::json;

use crate::env;

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the process-wide log sink (once, from `main`).
pub fn capture_logs() {
    let buffer = Arc::clone(LOGS.get_or_init(|| Arc::new(Mutex::new(Vec::new()))));
    let filter = tracing_subscriber::EnvFilter::new(
        "debug,quickstore=trace,command_api=trace,query_api=trace,platform=trace,sagas=trace,\
         tower=debug,hyper=debug,hyper_util=debug,h2=info,rustls=debug,reqwest=debug",
    );
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(move || Sink(Arc::clone(&buffer)))
        .try_init();
}

fn logs() -> String {
    let buffer = LOGS.get().map(|b| {
        b.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    });
    String::from_utf8_lossy(&buffer.unwrap_or_default()).into_owned()
}

pub async fn secrets_never_reach_the_logs(adapter: TestAdapter) -> Result<()> {
    let env = env::start(adapter).await?;
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let password = format!("pw-{unique}-correct");
    let wrong = format!("pw-{unique}-wrong");
    let email = format!("sec-{}@example.com", &unique[..8]);
    let mut secrets: Vec<(String, String)> = vec![
        ("password".into(), password.clone()),
        ("wrong password".into(), wrong.clone()),
        ("webhook secret".into(), crate::app::WEBHOOK_SECRET.into()),
    ];

    // Register, a wrong password, a weak one, log in, rotate, log out.
    let (status, _, reg) = env
        .command(
            Method::POST,
            "/auth/register",
            None,
            Some(&json!({"email": email, "password": password, "display_name": "Sec"})),
        )
        .await?;
    ensure!(status == StatusCode::CREATED, "{status} {reg}");
    secrets.push((
        "register access token".into(),
        reg["access_token"].as_str().unwrap().into(),
    ));
    secrets.push((
        "register refresh token".into(),
        reg["refresh_token"].as_str().unwrap().into(),
    ));
    let (status, ..) = env
        .command(
            Method::POST,
            "/auth/login",
            None,
            Some(&json!({"email": email, "password": wrong})),
        )
        .await?;
    ensure!(status == StatusCode::UNAUTHORIZED);
    let weak = format!("w{}", &unique[..3]);
    let (status, ..) = env
        .command(Method::POST, "/auth/register", None, Some(&json!({"email": format!("weak-{email}"), "password": weak, "display_name": "Weak"})))
        .await?;
    ensure!(
        status == StatusCode::UNPROCESSABLE_ENTITY,
        "weak password: {status}"
    );
    secrets.push(("weak password".into(), weak));
    // A new session: its access and refresh tokens.
    let log_in = || async {
        let (status, _, login) = env
            .command(
                Method::POST,
                "/auth/login",
                None,
                Some(&json!({"email": email, "password": password})),
            )
            .await?;
        ensure!(status == StatusCode::OK, "{status} {login}");
        let token = |name: &str| login[name].as_str().unwrap().to_owned();
        Ok((token("access_token"), token("refresh_token")))
    };
    let (access, refresh) = log_in().await?;
    let (status, _, rotated) = env
        .command(
            Method::POST,
            "/auth/refresh",
            None,
            Some(&json!({"refresh_token": refresh})),
        )
        .await?;
    ensure!(status == StatusCode::OK, "{status} {rotated}");
    // The used refresh token again (reuse detection logs a warning).
    let (status, ..) = env
        .command(
            Method::POST,
            "/auth/refresh",
            None,
            Some(&json!({"refresh_token": refresh})),
        )
        .await?;
    ensure!(status == StatusCode::UNAUTHORIZED);
    secrets.push(("access token".into(), access.clone()));
    secrets.push(("refresh token".into(), refresh.clone()));
    secrets.push((
        "rotated access token".into(),
        rotated["access_token"].as_str().unwrap().into(),
    ));
    secrets.push((
        "rotated refresh token".into(),
        rotated["refresh_token"].as_str().unwrap().into(),
    ));
    // The reuse ended that session, its access tokens too (ADR 0022): the
    // rest runs on a new one.
    let (access, second_refresh) = log_in().await?;
    secrets.push(("second session's access token".into(), access.clone()));
    secrets.push(("second session's refresh token".into(), second_refresh));

    // Reads and an expired token on the query API.
    let (status, ..) = env.query("/customers/me/orders", Some(&access)).await?;
    ensure!(status == StatusCode::OK, "{status}");
    let expired = env
        .state()
        .issuer
        .sign_access(
            reg["customer_id"].as_str().unwrap(),
            &[platform::auth::Role::Customer],
            env.now_s() - 7_200,
        )
        .unwrap();
    let (status, ..) = env
        .query("/customers/me/orders", Some(expired.expose()))
        .await?;
    ensure!(status == StatusCode::UNAUTHORIZED);
    secrets.push(("expired access token".into(), expired.expose().to_owned()));

    // Orders paid by card: approved, and one answered by a signed webhook.
    let (status, body) = env
        .app
        .place_order(&access, &[(&env.sku, 1)], crate::app::APPROVE)
        .await?;
    ensure!(status.is_success(), "{status} {body}");
    let (status, body) = env
        .app
        .place_order(&access, &[(&env.sku, 1)], crate::app::ANSWER_BY_WEBHOOK)
        .await?;
    ensure!(status.is_success(), "{status} {body}");
    let order = body["order_id"].as_str().unwrap().to_owned();
    env.app
        .wait_for(Context::Payments, &order, "PaymentAuthorizationPending")
        .await?;
    let reference = env
        .app
        .events(Context::Payments)
        .await?
        .into_iter()
        .find_map(|(id, _, _, e)| match e {
            schemas::AnyEvent::Payments(
                schemas::payments::PaymentsEvent::PaymentAuthorizationPending(p),
            ) if id == order => Some(p.gateway_reference),
            _ => None,
        })
        .unwrap();
    let payload = WebhookEvent::authorized("evt_logs", &reference, &order, "AUTH1").to_json();
    let signature = sign(
        &payload,
        &Secret::new(crate::app::WEBHOOK_SECRET),
        env.now_s(),
    );
    let status = env
        .http
        .post(format!("{}/webhooks/payments", env.app.url))
        .header("content-type", "application/json")
        .header("gateway-signature", &signature)
        .body(payload)
        .send()
        .await?
        .status();
    ensure!(status == StatusCode::OK, "webhook: {status}");
    env.app
        .wait_for(Context::Orders, &order, "OrderConfirmed")
        .await?;
    for card in [crate::app::APPROVE, crate::app::ANSWER_BY_WEBHOOK] {
        secrets.push(("card number".into(), card.to_owned()));
        secrets.push(("card number (digits)".into(), card.replace(' ', "")));
    }
    // The webhook signature is an HMAC of the secret: logging it would
    // hand out a valid (if short-lived) request.
    secrets.push((
        "webhook signature".into(),
        signature.rsplit('=').next().unwrap_or_default().to_owned(),
    ));

    // Infrastructure secrets as configured, logged the way a service
    // logs its settings at start.
    let settings = Settings {
        kafka_security_protocol: "sasl_ssl".into(),
        kafka_sasl_username: Some("shop".into()),
        kafka_sasl_password: Some(Secret::new(format!("sasl-{unique}"))),
        kafka_ssl_key_password: Some(Secret::new(format!("sslkey-{unique}"))),
        cql_username: Some("reader".into()),
        cql_password: Some(Secret::new(format!("cql-{unique}"))),
        payment_webhook_secret: Some(Secret::new(format!("whsec-{unique}"))),
        auth_signing_key: Some(env.state().issuer.keys().to_pem()),
        ..Settings::default()
    };
    tracing::info!(?settings, kafka = ?settings.kafka(), cql = ?settings.cql().ok(), state = ?env.state(), "settings");
    for name in ["sasl", "sslkey", "cql", "whsec"] {
        secrets.push((format!("{name} setting"), format!("{name}-{unique}")));
    }
    let pem = env.state().issuer.keys().to_pem();
    let key_line = pem.expose().lines().nth(1).unwrap_or_default().to_owned();
    ensure!(key_line.len() > 40, "the key's PEM has a body line");
    secrets.push(("signing key".into(), key_line));

    env.stop().await?;
    let text = logs();
    if let Ok(path) = std::env::var("QS_SECURITY_LOG_DUMP") {
        std::fs::write(path, &text)?;
    }
    // The sink works: the settings line (with every secret field, printed
    // through `Debug`) and the query API's request spans are in it.
    ensure!(
        text.contains("security::secrets: settings")
            && text.contains("kafka_sasl_password")
            && text.contains("service=\"query-api\""),
        "the log sink captured nothing useful ({} bytes)",
        text.len()
    );
    let mut leaks = Vec::new();
    for (what, value) in &secrets {
        ensure!(!value.is_empty(), "{what} is empty");
        if let Some(at) = text.find(value.as_str()) {
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
            leaks.push(format!("{what}: {}", &text[line_start..line_end]));
        }
    }
    ensure!(
        leaks.is_empty(),
        "secrets in the logs:\n{}",
        leaks.join("\n")
    );
    Ok(())
}
