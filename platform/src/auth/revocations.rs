//! Revocations as records on the event log, so a service that verifies
//! tokens offline (the query API) refuses a logged-out token within about a
//! second instead of after the token's 15 minutes (ADR 0022).
//!
//! Why the log and not a call to the command API: each command-API replica
//! keeps its own credential store (a redb file in its data directory), so
//! no single replica knows every revocation, and a call per request is what
//! offline verification exists to avoid. Every replica appends what it
//! revokes to one topic (`<prefix>auth.revocations`, one partition: the
//! records are few and one partition keeps "caught up to offset N" one
//! number); every verifier reads it into a [`RevocationView`].
//!
//! Records are JSON (`{"kind":"access","id":<jti>,"until":<s>}` or
//! `"kind":"session"` with the refresh family), not Avro: they are an
//! internal protocol between two of our services, never an event of the
//! domain, and carry no personal data (token ids and family ids are random
//! UUIDs). A revoked token is dead, so the list is no secret either.
//!
//! The view is **fresh** when, at some instant `t`, it read the partition
//! up to the end the log reported at `t`: every revocation appended before
//! `t` is in it. The follower polls the end every `poll` (500 ms by
//! default) and reads only when it moved, so an idle topic costs one
//! metadata request per poll. Past [`RevocationView::max_staleness`] the
//! view refuses to vouch for any token ([`ViewError::Stale`]): the caller
//! answers 503 instead of trusting a list it cannot keep current.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::store::{revocation_expired, RevocationList};
use super::tokens::Claims;
use super::AuthError;
use crate::eventlog::{
    Cleanup, EventLog, LogError, OutgoingRecord, Producer, TopicPartition, TopicSpec,
};

/// How far back a starting follower reads: longer than any access token
/// lives (15 minutes by default) plus leeway, with a wide margin for a
/// longer configured lifetime. Older records name tokens that expired.
pub const LOOKBACK: Duration = Duration::from_secs(24 * 60 * 60);

/// How often a follower asks the log for the topic's end: the usual delay
/// between a logout and its refusal everywhere is about this.
pub const DEFAULT_POLL: Duration = Duration::from_millis(500);

/// How long a view may go without catching up before it refuses to vouch
/// for tokens: the longest a revoked token can still be accepted when the
/// log is unreachable.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(30);

/// The topic's retention: longer than [`LOOKBACK`], so a follower never
/// finds the records it needs deleted.
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Most revocations a view holds. Reaching it makes the view unusable
/// (stale) rather than dropping entries: a dropped entry would let a
/// revoked token back in without a sound. A million is ~100 MB and far
/// beyond a day's logouts of any shop this runs.
pub const MAX_ENTRIES: usize = 1_000_000;

/// The revocation topic's spec: one partition, deleted after [`RETENTION`].
pub fn topic_spec(topic: impl Into<String>) -> TopicSpec {
    TopicSpec::new(
        topic,
        1,
        Cleanup::Delete {
            retention: RETENTION,
        },
    )
}

/// What a revocation names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevokedKind {
    /// One access token, by `jti`.
    Access,
    /// Every access token of a session, by refresh family (`sid`).
    Session,
}

/// One revocation as it travels on the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub kind: RevokedKind,
    pub id: String,
    /// Seconds since the epoch after which no token it names can verify
    /// anyway (their `exp`), so the entry can be forgotten.
    pub until: i64,
}

impl Revocation {
    pub fn access(jti: impl Into<String>, exp_s: i64) -> Self {
        Self {
            kind: RevokedKind::Access,
            id: jti.into(),
            until: exp_s,
        }
    }

    pub fn session(family: impl Into<String>, until_s: i64) -> Self {
        Self {
            kind: RevokedKind::Session,
            id: family.into(),
            until: until_s,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings and integers always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Appends revocations to the topic: what every command-API replica does
/// before it answers a logout.
pub struct RevocationPublisher {
    producer: Box<dyn Producer>,
    topic: String,
}

impl std::fmt::Debug for RevocationPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationPublisher")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl RevocationPublisher {
    /// Creates the topic if missing and a producer for it.
    pub async fn start(
        log: &dyn EventLog,
        spec: TopicSpec,
        client_id: &str,
    ) -> Result<Self, LogError> {
        let topic = spec.name.clone();
        log.create_topics(&[spec]).await?;
        Ok(Self {
            producer: log.producer(client_id).await?,
            topic,
        })
    }

    /// Appends each revocation; resolves once all are durable (acks=all).
    pub async fn publish(&self, revocations: &[Revocation]) -> Result<(), LogError> {
        for r in revocations {
            let record = OutgoingRecord::new(self.topic.clone(), r.id.clone(), r.to_bytes());
            self.producer.send(record).await?;
        }
        Ok(())
    }
}

/// Why a view cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// The view has not been brought up to date within the bound (or never
    /// was): it cannot say whether a token was revoked.
    #[error("the revocation list is stale: {0}")]
    Stale(String),
}

#[derive(Debug, Default)]
struct ViewState {
    entries: HashMap<(RevokedKind, String), i64>,
    /// When the view last caught up with the log's end (see the module).
    fresh_at: Option<Instant>,
    /// The last reason it could not (for `/readyz` and the 503's log line).
    last_error: Option<String>,
    overflowed: bool,
}

/// The revoked tokens and sessions a verifier consults, kept current by
/// [`follow`]. In memory, bounded ([`MAX_ENTRIES`]), entries forgotten once
/// the tokens they name have expired.
#[derive(Debug)]
pub struct RevocationView {
    state: Mutex<ViewState>,
    max_staleness: Duration,
}

impl RevocationView {
    pub fn new(max_staleness: Duration) -> Self {
        Self {
            state: Mutex::new(ViewState::default()),
            max_staleness,
        }
    }

    pub fn max_staleness(&self) -> Duration {
        self.max_staleness
    }

    /// Entries are plain data, consistent after every statement.
    fn lock(&self) -> MutexGuard<'_, ViewState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds one revocation (already-expired ones are skipped).
    pub fn insert(&self, revocation: Revocation, now_s: i64) {
        if revocation_expired(revocation.until, now_s) {
            return;
        }
        let mut state = self.lock();
        let key = (revocation.kind, revocation.id);
        if !state.entries.contains_key(&key) && state.entries.len() >= MAX_ENTRIES {
            state
                .entries
                .retain(|_, until| !revocation_expired(*until, now_s));
            if state.entries.len() >= MAX_ENTRIES {
                state.overflowed = true;
                return;
            }
        }
        let until = state.entries.entry(key).or_insert(revocation.until);
        *until = (*until).max(revocation.until);
    }

    /// Forgets entries whose tokens have expired; returns how many went.
    pub fn prune(&self, now_s: i64) -> usize {
        let mut state = self.lock();
        let before = state.entries.len();
        state
            .entries
            .retain(|_, until| !revocation_expired(*until, now_s));
        before - state.entries.len()
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The view held everything appended before `at`.
    pub fn caught_up(&self, at: Instant) {
        let mut state = self.lock();
        state.fresh_at = Some(state.fresh_at.map_or(at, |t| t.max(at)));
        state.last_error = None;
    }

    /// A refresh failed (the reason is kept for `/readyz`'s log line).
    pub fn failed(&self, reason: String) {
        self.lock().last_error = Some(reason);
    }

    /// `Ok` when the view is current within [`Self::max_staleness`].
    pub fn check_fresh(&self) -> Result<(), ViewError> {
        let state = self.lock();
        if state.overflowed {
            return Err(ViewError::Stale(format!(
                "more than {MAX_ENTRIES} live revocations"
            )));
        }
        let why = || {
            state
                .last_error
                .clone()
                .unwrap_or_else(|| "not read yet".to_owned())
        };
        match state.fresh_at {
            None => Err(ViewError::Stale(format!("never caught up ({})", why()))),
            Some(at) if at.elapsed() > self.max_staleness => Err(ViewError::Stale(format!(
                "last caught up {} s ago, bound {} s ({})",
                at.elapsed().as_secs(),
                self.max_staleness.as_secs(),
                why()
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Whether `claims` names a revoked token or session. [`ViewError`]
    /// when the view is too stale to say.
    pub fn check(&self, claims: &Claims) -> Result<bool, ViewError> {
        self.check_fresh()?;
        let state = self.lock();
        let revoked = state
            .entries
            .contains_key(&(RevokedKind::Access, claims.jti.clone()))
            || claims.sid.as_ref().is_some_and(|sid| {
                state
                    .entries
                    .contains_key(&(RevokedKind::Session, sid.clone()))
            });
        Ok(revoked)
    }
}

/// The view as a [`RevocationList`] (freshness aside: use
/// [`RevocationView::check`] where staleness must refuse).
impl RevocationList for RevocationView {
    fn is_revoked(&self, jti: &str) -> Result<bool, AuthError> {
        Ok(self
            .lock()
            .entries
            .contains_key(&(RevokedKind::Access, jti.to_owned())))
    }

    fn is_session_revoked(&self, family: &str) -> Result<bool, AuthError> {
        Ok(self
            .lock()
            .entries
            .contains_key(&(RevokedKind::Session, family.to_owned())))
    }
}

/// Seconds since the epoch, as the follower needs it (passed in: tests
/// move time).
pub type NowS = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Keeps `view` current from `topic` until the returned guard is dropped:
/// reads the last [`LOOKBACK`] first, then every `poll` asks the log for
/// the partition's end and reads up to it when it moved. Delivery:
/// at-least-once into an idempotent set (a record read twice changes
/// nothing); a failed read is retried from the last applied offset.
pub fn follow(
    log: Arc<dyn EventLog>,
    topic: String,
    view: Arc<RevocationView>,
    poll: Duration,
    now_s: NowS,
) -> Following {
    Following(tokio::spawn(async move {
        let tp = TopicPartition::new(topic, 0);
        let mut position: Option<i64> = None;
        let mut last_prune = Instant::now();
        let mut failing = false;
        loop {
            let started = Instant::now();
            match step(log.as_ref(), &tp, &mut position, &view, now_s()).await {
                Ok(()) => {
                    view.caught_up(started);
                    if failing {
                        tracing::info!(topic = %tp.topic, "revocation list caught up again");
                        failing = false;
                    }
                }
                Err(e) => {
                    // Once per outage, not once per poll.
                    if !failing {
                        tracing::warn!(topic = %tp.topic, error = %e, "reading revocations failed");
                        failing = true;
                    }
                    view.failed(e.to_string());
                }
            }
            if last_prune.elapsed() >= Duration::from_secs(60) {
                view.prune(now_s());
                last_prune = Instant::now();
            }
            tokio::time::sleep(poll).await;
        }
    }))
}

/// The follower task of [`follow`]; dropping it stops the task.
#[derive(Debug)]
pub struct Following(tokio::task::JoinHandle<()>);

impl Drop for Following {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One poll: reads from the last applied offset (or the look-back start)
/// to the end the log reports now.
async fn step(
    log: &dyn EventLog,
    tp: &TopicPartition,
    position: &mut Option<i64>,
    view: &RevocationView,
    now_s: i64,
) -> Result<(), LogError> {
    let end = log.end_offset(tp).await?;
    let from = match *position {
        Some(p) => p,
        None => {
            let since_ms = now_s
                .saturating_sub(i64::try_from(LOOKBACK.as_secs()).unwrap_or(i64::MAX))
                .saturating_mul(1000);
            log.offset_for_time(tp, since_ms).await?
        }
    };
    if end > from {
        let mut records = log.read_range(tp.clone(), from, end);
        while let Some(record) = records.next().await {
            let record = record?;
            match record.value.as_deref().map(Revocation::from_bytes) {
                Some(Ok(revocation)) => view.insert(revocation, now_s),
                // Not ours to understand (a newer kind): skipped, loudly.
                Some(Err(e)) => tracing::warn!(
                    offset = record.offset,
                    error = %e,
                    "undecodable revocation record skipped"
                ),
                None => {}
            }
            *position = Some(record.offset.saturating_add(1));
        }
    }
    // Everything below `end` is applied (offsets may have gaps).
    *position = Some(position.unwrap_or(from).max(end));
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn claims(jti: &str, sid: Option<&str>) -> Claims {
        Claims {
            iss: "i".into(),
            aud: "a".into(),
            sub: "c".into(),
            roles: vec![],
            iat: 0,
            nbf: 0,
            exp: 1_000,
            jti: jti.into(),
            sid: sid.map(str::to_owned),
        }
    }

    #[test]
    fn records_round_trip_as_json() {
        let r = Revocation::session("fam", 42);
        assert_eq!(
            String::from_utf8(r.to_bytes()).unwrap(),
            r#"{"kind":"session","id":"fam","until":42}"#
        );
        assert_eq!(Revocation::from_bytes(&r.to_bytes()).unwrap(), r);
    }

    #[test]
    fn a_view_never_caught_up_refuses_to_answer() {
        let view = RevocationView::new(Duration::from_secs(30));
        assert!(view.check(&claims("j", None)).is_err());
        view.caught_up(Instant::now());
        assert_eq!(view.check(&claims("j", None)), Ok(false));
    }

    #[test]
    fn a_view_past_its_bound_is_stale() {
        let view = RevocationView::new(Duration::from_millis(0));
        view.caught_up(Instant::now());
        std::thread::sleep(Duration::from_millis(5));
        view.failed("broker down".into());
        let err = view.check_fresh().unwrap_err();
        assert!(err.to_string().contains("broker down"), "{err}");
    }

    #[test]
    fn tokens_and_sessions_are_revoked_until_they_expire() {
        let view = RevocationView::new(Duration::from_secs(30));
        view.caught_up(Instant::now());
        view.insert(Revocation::access("j1", 1_000), 500);
        view.insert(Revocation::session("f1", 1_000), 500);
        assert_eq!(view.check(&claims("j1", None)), Ok(true));
        assert_eq!(view.check(&claims("j2", Some("f1"))), Ok(true));
        assert_eq!(view.check(&claims("j2", Some("f2"))), Ok(false));
        // Already expired: not kept.
        view.insert(Revocation::access("old", 10), 500);
        assert_eq!(view.len(), 2);
        assert_eq!(view.prune(1_000 + 31), 2);
        assert!(view.is_empty());
    }
}
