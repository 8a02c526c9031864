//! Load generation and measurement shared by every benchmark: open-loop
//! loads at a fixed rate (no coordinated omission), latency percentiles,
//! and this process's CPU time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

/// Latencies of one open-loop load.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LatencyReport {
    pub requests: u64,
    /// Failed requests (transport errors, non-200 answers, missing rows).
    pub errors: u64,
    /// Completed requests per second, first scheduled send to last answer.
    pub achieved_rate: f64,
    /// From the scheduled send time to the answer's last byte.
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// How late the load generator itself sent, p99: included in the
    /// latencies above (that is what open loop means), shown so a late
    /// generator is not mistaken for a slow server.
    pub send_lag_p99_ms: f64,
    /// This process's CPU time (server, client and load generator alike)
    /// per request; `None` where `/proc/self/stat` cannot be read.
    pub cpu_us_per_request: Option<f64>,
}

/// CPU time of this process (user + system, every thread, including
/// threads that ended), from `/proc/self/stat`. Its unit is USER_HZ ticks,
/// 1/100 s on every Linux ABI. Not `getrusage`: the workspace forbids
/// unsafe code and `libc` is not a dependency. `None` off Linux.
pub fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces: count after its ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

pub fn cpu_delta(from: Option<Duration>, to: Option<Duration>) -> Option<Duration> {
    Some(to?.saturating_sub(from?))
}

pub type Op = Arc<dyn Fn(usize) -> futures::future::BoxFuture<'static, Result<()>> + Send + Sync>;

/// The `i`-th random pick among `n` (splitmix64 of `i`: the same sequence
/// every run, uniform enough, no dependency).
pub fn pick(i: usize, n: usize) -> usize {
    let mut z = (i as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z % n.max(1) as u64) as usize
}

/// What open-loop loads measured, merged over slices.
#[derive(Debug, Default)]
pub struct Samples {
    /// From each request's scheduled send time to its answer.
    latencies: Vec<Duration>,
    /// From each request's scheduled send time to its start.
    lags: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
    /// Time under load: from each slice's first scheduled send to its last
    /// answer, summed.
    busy: Duration,
    cpu: Option<Duration>,
}

impl Samples {
    pub fn extend(&mut self, other: Samples) {
        let first = self.latencies.is_empty();
        self.latencies.extend(other.latencies);
        self.lags.extend(other.lags);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.busy += other.busy;
        self.cpu = if first {
            other.cpu
        } else {
            self.cpu.and_then(|c| Some(c + other.cpu?))
        };
    }

    pub fn report(mut self) -> LatencyReport {
        let requests = self.latencies.len() as u64;
        if let Some(e) = &self.first_error {
            eprintln!(
                "bench: {} of {requests} requests failed; the first: {e}",
                self.errors
            );
        }
        self.latencies.sort_unstable();
        self.lags.sort_unstable();
        LatencyReport {
            requests,
            errors: self.errors,
            achieved_rate: (requests - self.errors) as f64 / self.busy.as_secs_f64().max(1e-9),
            p50_ms: percentile(&self.latencies, 0.5),
            p95_ms: percentile(&self.latencies, 0.95),
            p99_ms: percentile(&self.latencies, 0.99),
            p999_ms: percentile(&self.latencies, 0.999),
            max_ms: percentile(&self.latencies, 1.0),
            send_lag_p99_ms: percentile(&self.lags, 0.99),
            cpu_us_per_request: self
                .cpu
                .map(|c| c.as_secs_f64() * 1e6 / requests.max(1) as f64),
        }
    }
}

/// `rate` operations per second for `duration`, open loop: the `k`-th is
/// sent at `start + k / rate` whatever the earlier ones are doing, and its
/// latency counts from that scheduled time, so a stall shows up in every
/// request it delays. `stream` separates the picks of different loads.
///
/// The schedule is kept by a blocking thread with `std::thread::sleep`
/// (tens of µs late), not by tokio's timer, whose 1 ms ticks would add up
/// to a millisecond to every latency; the requests run on the runtime.
pub async fn open_loop(rate: f64, duration: Duration, stream: u64, op: Op) -> Result<Samples> {
    let total = ((rate * duration.as_secs_f64()).round() as usize).max(1);
    let interval = Duration::from_secs_f64(1.0 / rate);
    let offset = (stream as usize) << 40;
    let runtime = tokio::runtime::Handle::current();
    let cpu0 = process_cpu();
    let (start, tasks) = tokio::task::spawn_blocking(move || {
        let start = Instant::now() + Duration::from_millis(5);
        let mut tasks = Vec::with_capacity(total);
        for k in 0..total {
            let scheduled = start + interval.mul_f64(k as f64);
            let now = Instant::now();
            if scheduled > now {
                std::thread::sleep(scheduled - now);
            }
            let op = Arc::clone(&op);
            tasks.push(runtime.spawn(async move {
                let lag = scheduled.elapsed();
                let outcome = op(offset + k).await;
                let done = Instant::now();
                (done.duration_since(scheduled), lag, done, outcome.err())
            }));
        }
        (start, tasks)
    })
    .await?;
    let mut samples = Samples {
        latencies: Vec::with_capacity(total),
        lags: Vec::with_capacity(total),
        ..Samples::default()
    };
    let mut last = start;
    for task in tasks {
        let (latency, lag, done, error) = task.await?;
        samples.latencies.push(latency);
        samples.lags.push(lag);
        last = last.max(done);
        if let Some(e) = error {
            samples.errors += 1;
            samples.first_error.get_or_insert(format!("{e:#}"));
        }
    }
    samples.busy = last.duration_since(start);
    samples.cpu = cpu_delta(cpu0, process_cpu());
    Ok(samples)
}

pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}
