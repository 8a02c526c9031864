//! The load's HTTP client: what a well-behaved real client does while
//! QuickStore processes come and go — retry a connection error, a 5xx or a
//! 503 with the *same* Idempotency-Key (so a command is never sent twice
//! as two commands), follow a 202 to its outcome, log in again on a 401 —
//! and a ledger of every command it sent and the answer it finally got.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::RwLock;

/// Counters of the client's side of the run.
#[derive(Debug, Default)]
pub struct ClientStats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub server_errors: AtomicU64,
    pub unavailable_503: AtomicU64,
    pub connection_errors: AtomicU64,
    pub pending_202: AtomicU64,
    pub relogins: AtomicU64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClientFigures {
    pub requests: u64,
    pub retries: u64,
    pub server_errors_5xx: u64,
    pub unavailable_503: u64,
    pub connection_errors: u64,
    pub pending_202: u64,
    pub relogins: u64,
}

impl ClientStats {
    pub fn figures(&self) -> ClientFigures {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ClientFigures {
            requests: get(&self.requests),
            retries: get(&self.retries),
            server_errors_5xx: get(&self.server_errors),
            unavailable_503: get(&self.unavailable_503),
            connection_errors: get(&self.connection_errors),
            pending_202: get(&self.pending_202),
            relogins: get(&self.relogins),
        }
    }
}

/// One command the client sent (under one Idempotency-Key) and how it
/// ended: `status` is the final HTTP status, `None` = no answer in time.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerEntry {
    pub key: String,
    pub what: String,
    pub status: Option<u16>,
    pub attempts: u32,
    /// Some attempt got a 202: the command was durable in the log. One
    /// of these without a final answer is a lost command; one never
    /// acknowledged is the system being unavailable for the deadline.
    pub accepted: bool,
    /// What the last attempt got, for a command without a final answer.
    pub last_attempt: String,
}

/// A logged-in user (re-logs in when a token stops working).
#[derive(Debug)]
pub struct Session {
    pub email: String,
    password: String,
    pub customer_id: String,
    token: RwLock<String>,
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    pub command_url: String,
    pub query_url: String,
    pub stats: ClientStats,
    pub ledger: Mutex<Vec<LedgerEntry>>,
    /// How long one command may take, retries included, before it counts
    /// as lost.
    pub command_deadline: Duration,
}

impl Client {
    pub fn new(command_url: String, query_url: String) -> Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .connect_timeout(Duration::from_secs(2))
                .build()?,
            command_url,
            query_url,
            stats: ClientStats::default(),
            ledger: Mutex::new(Vec::new()),
            command_deadline: Duration::from_secs(300),
        })
    }

    /// POST /auth/login (retried like any request).
    pub async fn login(&self, email: &str, password: &str) -> Result<Session> {
        let token = self.token(email, password).await?;
        Ok(Session {
            email: email.to_owned(),
            password: password.to_owned(),
            customer_id: token.1,
            token: RwLock::new(token.0),
        })
    }

    /// POST /auth/register, then the session.
    pub async fn register(&self, email: &str, password: &str, name: &str) -> Result<Session> {
        let reply = self
            .unauthenticated(
                "/auth/register",
                json!({"email": email, "password": password, "display_name": name}),
            )
            .await?;
        if !reply.ok() && reply.status != 409 {
            return Err(anyhow!("register {email}: {} {}", reply.status, reply.body));
        }
        self.login(email, password).await
    }

    async fn token(&self, email: &str, password: &str) -> Result<(String, String)> {
        let reply = self
            .unauthenticated("/auth/login", json!({"email": email, "password": password}))
            .await?;
        let token = reply.body["access_token"].as_str();
        let id = reply.body["customer_id"].as_str();
        match (token, id) {
            (Some(t), Some(id)) => Ok((t.to_owned(), id.to_owned())),
            _ => Err(anyhow!("login {email}: {} {}", reply.status, reply.body)),
        }
    }

    async fn unauthenticated(&self, path: &str, body: Value) -> Result<Reply> {
        let deadline = Instant::now() + self.command_deadline;
        let mut backoff = Backoff::default();
        loop {
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let sent = self
                .http
                .post(format!("{}{path}", self.command_url))
                .json(&body)
                .send()
                .await;
            match self.classify(sent).await {
                Attempt::Final(reply) => return Ok(reply),
                Attempt::Retry(_) | Attempt::Unauthorized | Attempt::Pending(_) => {}
            }
            if Instant::now() > deadline {
                return Err(anyhow!("POST {path}: no answer within the deadline"));
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            backoff.sleep().await;
        }
    }

    /// A read of the query API, retried through outages; `None` when it
    /// never answered within `deadline`.
    pub async fn query(&self, session: &Session, path: &str, deadline: Duration) -> Option<Reply> {
        let url = format!("{}{path}", self.query_url);
        self.get(session, &url, deadline).await
    }

    async fn get(&self, session: &Session, url: &str, deadline: Duration) -> Option<Reply> {
        let deadline = Instant::now() + deadline;
        let mut backoff = Backoff::default();
        loop {
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let token = session.token.read().await.clone();
            let sent = self.http.get(url).bearer_auth(token).send().await;
            match self.classify(sent).await {
                Attempt::Final(reply) => return Some(reply),
                Attempt::Pending(reply) => return Some(reply),
                Attempt::Unauthorized => self.relogin(session).await,
                Attempt::Retry(_) => {}
            }
            if Instant::now() > deadline {
                return None;
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            backoff.sleep().await;
        }
    }

    /// A command under `key`: retried with the same key until it has a
    /// final answer (2xx/4xx), a 202 followed to its outcome. Recorded in
    /// the ledger either way.
    pub async fn command(
        &self,
        session: &Session,
        method: Method,
        path: &str,
        body: Option<Value>,
        key: &str,
        what: &str,
    ) -> Option<Reply> {
        let url = format!("{}{path}", self.command_url);
        let deadline = Instant::now() + self.command_deadline;
        let mut backoff = Backoff::default();
        let mut attempts = 0;
        let mut accepted = false;
        let mut last_attempt: String;
        let result = loop {
            attempts += 1;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let token = session.token.read().await.clone();
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(token)
                .header("idempotency-key", key);
            if let Some(body) = &body {
                request = request.json(body);
            }
            let attempt = self.classify(request.send().await).await;
            last_attempt = attempt.describe();
            match attempt {
                Attempt::Final(reply) => break Some(reply),
                Attempt::Pending(reply) => {
                    accepted = true;
                    // Durable but not decided in time: what a command API
                    // answers while a processor is away.
                    self.stats.pending_202.fetch_add(1, Ordering::Relaxed);
                    if let Some(reply) = self.follow(session, &reply, deadline).await {
                        break Some(reply);
                    }
                    // No outcome from the status URL (the API that held it
                    // restarted): send the same request again, same key —
                    // the command processor answers a repeat with its first
                    // outcome.
                }
                Attempt::Unauthorized => self.relogin(session).await,
                Attempt::Retry(_) => {}
            }
            if Instant::now() > deadline {
                break None;
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            backoff.sleep().await;
        };
        if let Ok(mut ledger) = self.ledger.lock() {
            ledger.push(LedgerEntry {
                key: key.to_owned(),
                what: what.to_owned(),
                status: result.as_ref().map(|r| r.status),
                attempts,
                accepted,
                last_attempt,
            });
        }
        result
    }

    /// Polls a 202's status URL for up to 20 s.
    async fn follow(&self, session: &Session, pending: &Reply, deadline: Instant) -> Option<Reply> {
        let command_id = pending.body["command_id"].as_str()?;
        let url = format!("{}/commands/{command_id}", self.command_url);
        let until = (Instant::now() + Duration::from_secs(20)).min(deadline);
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let reply = self.get(session, &url, Duration::from_secs(5)).await?;
            if reply.status != 202 {
                return Some(reply);
            }
        }
        None
    }

    async fn relogin(&self, session: &Session) {
        self.stats.relogins.fetch_add(1, Ordering::Relaxed);
        if let Ok((token, _)) = self.token(&session.email, &session.password).await {
            *session.token.write().await = token;
        }
    }

    async fn classify(&self, sent: reqwest::Result<reqwest::Response>) -> Attempt {
        let response = match sent {
            Ok(r) => r,
            Err(_) => {
                self.stats.connection_errors.fetch_add(1, Ordering::Relaxed);
                return Attempt::Retry("connection error".into());
            }
        };
        let status = response.status().as_u16();
        let body = match response.bytes().await {
            Ok(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
            Err(_) => {
                self.stats.connection_errors.fetch_add(1, Ordering::Relaxed);
                return Attempt::Retry(format!("{status}, body cut off"));
            }
        };
        let reply = Reply { status, body };
        match status {
            500..=599 => {
                self.stats.server_errors.fetch_add(1, Ordering::Relaxed);
                if status == 503 {
                    self.stats.unavailable_503.fetch_add(1, Ordering::Relaxed);
                }
                Attempt::Retry(status.to_string())
            }
            401 => Attempt::Unauthorized,
            202 => Attempt::Pending(reply),
            // The same key still running (the first try is in flight).
            409 if reply.body.to_string().contains("request-in-progress") => {
                Attempt::Retry("409 request-in-progress".into())
            }
            _ => Attempt::Final(reply),
        }
    }
}

enum Attempt {
    Final(Reply),
    Pending(Reply),
    Unauthorized,
    /// Worth another try; what it got.
    Retry(String),
}

impl Attempt {
    fn describe(&self) -> String {
        match self {
            Attempt::Final(r) => r.status.to_string(),
            Attempt::Pending(_) => "202, no outcome within 20 s".into(),
            Attempt::Unauthorized => "401".into(),
            Attempt::Retry(what) => what.clone(),
        }
    }
}

/// 100 ms doubling to 2 s.
#[derive(Debug)]
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self(Duration::from_millis(100))
    }
}

impl Backoff {
    async fn sleep(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(2));
    }
}
