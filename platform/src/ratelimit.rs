//! Token-bucket rate limiting keyed by who is asking (an account, a client
//! address, a token's subject).
//!
//! Why a token bucket: it allows a burst up to its capacity (a client that
//! was idle may do a few things at once) and then a steady rate, and it
//! needs two numbers per key — no log of past requests.
//!
//! Time is data: every call takes `now_ms`, so tests move time by choosing
//! it, and a request uses one "now" for every limit it passes.
//!
//! Memory is bounded: at most `max_keys` buckets are kept. When a new key
//! would exceed that, buckets that have refilled completely (idle: they
//! hold no information a fresh bucket would not) are dropped first; if
//! every bucket is still in use, the one touched longest ago goes. An
//! attacker spraying keys can therefore only reset *idle-most* buckets,
//! never grow memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Buckets kept at most, by default (a few MB at worst).
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// One key's bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at_ms: i64,
}

/// A token bucket per key: `capacity` tokens, refilled at `capacity` per
/// `period`. A capacity of 0 turns the limiter off.
#[derive(Debug)]
pub struct RateLimiter {
    capacity: f64,
    /// Tokens added per millisecond.
    refill_per_ms: f64,
    max_keys: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Refused: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds, rounded up and at least 1 (the `Retry-After` header).
    pub fn seconds(&self) -> u64 {
        let ms = self.0.as_millis();
        u64::try_from(ms.div_ceil(1000)).unwrap_or(u64::MAX).max(1)
    }
}

impl RateLimiter {
    /// `capacity` requests per `period` per key (0 = unlimited).
    pub fn new(capacity: u32, period: Duration) -> Self {
        Self::with_max_keys(capacity, period, DEFAULT_MAX_KEYS)
    }

    pub fn with_max_keys(capacity: u32, period: Duration, max_keys: usize) -> Self {
        let period_ms = period.as_millis().max(1) as f64;
        Self {
            capacity: f64::from(capacity),
            refill_per_ms: f64::from(capacity) / period_ms,
            max_keys: max_keys.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `per_minute` requests a minute per key.
    pub fn per_minute(per_minute: u32) -> Self {
        Self::new(per_minute, Duration::from_secs(60))
    }

    /// `per_second` requests a second per key.
    pub fn per_second(per_second: u32) -> Self {
        Self::new(per_second, Duration::from_secs(1))
    }

    pub fn is_off(&self) -> bool {
        self.capacity <= 0.0
    }

    /// Takes one token from `key`'s bucket at `now_ms`, or says how long
    /// until one is there.
    pub fn check(&self, key: &str, now_ms: i64) -> Result<(), RetryAfter> {
        if self.is_off() {
            return Ok(());
        }
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            self.evict(&mut buckets, now_ms);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.capacity,
            at_ms: now_ms,
        });
        // A clock that went back refills nothing (and takes nothing away).
        let elapsed = now_ms.saturating_sub(bucket.at_ms).max(0) as f64;
        bucket.tokens = (bucket.tokens + elapsed * self.refill_per_ms).min(self.capacity);
        bucket.at_ms = bucket.at_ms.max(now_ms);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let missing_ms = ((1.0 - bucket.tokens) / self.refill_per_ms).ceil();
        Err(RetryAfter(Duration::from_millis(missing_ms as u64)))
    }

    /// Drops every bucket that has refilled by `now_ms`; if none has, the
    /// least recently touched one.
    fn evict(&self, buckets: &mut HashMap<String, Bucket>, now_ms: i64) {
        let full_after_ms = self.capacity / self.refill_per_ms;
        buckets.retain(|_, b| {
            let idle = now_ms.saturating_sub(b.at_ms) as f64;
            b.tokens + idle * self.refill_per_ms < self.capacity && idle < full_after_ms
        });
        if buckets.len() >= self.max_keys {
            if let Some(oldest) = buckets
                .iter()
                .min_by_key(|(_, b)| b.at_ms)
                .map(|(k, _)| k.clone())
            {
                buckets.remove(&oldest);
            }
        }
    }

    /// Buckets held now.
    pub fn len(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_up_to_capacity_then_refusal_with_the_wait() {
        let limiter = RateLimiter::per_minute(3);
        for _ in 0..3 {
            assert_eq!(limiter.check("a", 0), Ok(()));
        }
        let refused = limiter.check("a", 0).err();
        // One token takes 20 s at 3 a minute.
        assert_eq!(refused, Some(RetryAfter(Duration::from_secs(20))));
        assert_eq!(refused.map(|r| r.seconds()), Some(20));
        // Another key has its own bucket.
        assert_eq!(limiter.check("b", 0), Ok(()));
    }

    #[test]
    fn time_refills_the_bucket() {
        let limiter = RateLimiter::per_second(2);
        assert!(limiter.check("a", 1_000).is_ok());
        assert!(limiter.check("a", 1_000).is_ok());
        assert!(limiter.check("a", 1_000).is_err());
        assert!(limiter.check("a", 1_499).is_err());
        assert!(limiter.check("a", 1_500).is_ok());
        // A clock going back gives nothing.
        assert!(limiter.check("a", 0).is_err());
    }

    #[test]
    fn zero_is_off() {
        let limiter = RateLimiter::per_second(0);
        for _ in 0..10_000 {
            assert!(limiter.check("a", 0).is_ok());
        }
        assert!(limiter.is_empty());
    }

    #[test]
    fn memory_is_bounded_and_idle_buckets_go_first() {
        let limiter = RateLimiter::with_max_keys(2, Duration::from_secs(1), 3);
        // "busy" is drained and stays so; the others are idle by t=5000.
        assert!(limiter.check("busy", 5_000).is_ok());
        assert!(limiter.check("busy", 5_000).is_ok());
        assert!(limiter.check("idle-1", 0).is_ok());
        assert!(limiter.check("idle-2", 0).is_ok());
        for i in 0..1000 {
            let _ = limiter.check(&format!("spray-{i}"), 5_000);
            assert!(limiter.len() <= 3);
        }
        // Spraying keys never reset the drained bucket's state while idle
        // ones were there to drop, and memory never grew past the bound.
        assert!(limiter.len() <= 3);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(RetryAfter(Duration::from_millis(1)).seconds(), 1);
        assert_eq!(RetryAfter(Duration::from_millis(1001)).seconds(), 2);
        assert_eq!(RetryAfter(Duration::ZERO).seconds(), 1);
    }
}
