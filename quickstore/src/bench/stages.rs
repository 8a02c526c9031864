//! Where a load step's time went: the difference between two readings of
//! the process's stage histograms (`quickstore_record_wait_seconds` per
//! consumer, `quickstore_command_submit_seconds` per stage,
//! `quickstore_command_transaction_duration_seconds` per context), as
//! count, mean and interpolated percentiles — the same estimate
//! Prometheus's `histogram_quantile` makes, so a dashboard and the report
//! agree. The benchmark runs every role in this one process, so the
//! process's series are the system's.

use std::collections::HashMap;

use platform::telemetry::metrics::HistogramReading;
use serde::Serialize;

/// One stage over one step.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StageLatency {
    /// `wait <consumer>`, `submit <stage>` or `transaction <context>`.
    pub stage: String,
    pub count: u64,
    pub mean_ms: f64,
    /// Interpolated within the histogram's bucket: an estimate, as good
    /// as the buckets (1, 2, 5 per decade).
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The stage series now.
pub fn reading() -> Vec<HistogramReading> {
    platform::telemetry::metrics().stage_readings()
}

/// What happened between `before` and `after`, for each series that saw
/// anything, by stage name.
pub fn between(before: &[HistogramReading], after: &[HistogramReading]) -> Vec<StageLatency> {
    let before: HashMap<&str, &HistogramReading> =
        before.iter().map(|r| (r.series.as_str(), r)).collect();
    let mut stages: Vec<StageLatency> = after
        .iter()
        .filter_map(|a| {
            // A series whose buckets changed between the readings (they
            // are constants; a different build) cannot be diffed: compare
            // it as if new.
            let b = before.get(a.series.as_str()).filter(|b| {
                b.buckets
                    .iter()
                    .map(|x| x.0)
                    .eq(a.buckets.iter().map(|x| x.0))
            });
            let count = a.count.saturating_sub(b.map_or(0, |b| b.count));
            if count == 0 {
                return None;
            }
            let sum = a.sum_seconds - b.map_or(0.0, |b| b.sum_seconds);
            let buckets: Vec<(f64, u64)> = a
                .buckets
                .iter()
                .map(|&(bound, cumulative)| {
                    let earlier = b
                        .and_then(|b| b.buckets.iter().find(|(x, _)| *x == bound))
                        .map_or(0, |&(_, c)| c);
                    (bound, cumulative.saturating_sub(earlier))
                })
                .collect();
            Some(StageLatency {
                stage: a.series.clone(),
                count,
                mean_ms: sum * 1000.0 / count as f64,
                p50_ms: quantile(&buckets, count, 0.5) * 1000.0,
                p99_ms: quantile(&buckets, count, 0.99) * 1000.0,
            })
        })
        .collect();
    stages.sort_by(|a, b| a.stage.cmp(&b.stage));
    stages
}

/// The `q`-quantile of `count` observations in cumulative `buckets`,
/// linear within the bucket it falls in; the highest finite bound when it
/// falls beyond them (a floor, as `histogram_quantile` reports).
fn quantile(buckets: &[(f64, u64)], count: u64, q: f64) -> f64 {
    let rank = q * count as f64;
    let mut lower = (0.0, 0u64);
    for &(bound, cumulative) in buckets {
        if cumulative as f64 >= rank {
            let inside = cumulative.saturating_sub(lower.1) as f64;
            if inside == 0.0 {
                return bound;
            }
            return lower.0
                + (bound - lower.0) * ((rank - lower.1 as f64) / inside).clamp(0.0, 1.0);
        }
        lower = (bound, cumulative);
    }
    lower.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(series: &str, buckets: &[(f64, u64)], sum: f64) -> HistogramReading {
        HistogramReading {
            series: series.into(),
            count: buckets.last().map_or(0, |b| b.1),
            sum_seconds: sum,
            buckets: buckets.to_vec(),
        }
    }

    #[test]
    fn a_step_is_the_difference_of_two_readings() {
        let before = vec![
            reading("wait a", &[(0.01, 10), (0.1, 10), (1.0, 10)], 0.05),
            reading("wait idle", &[(0.01, 3), (0.1, 3), (1.0, 3)], 0.0),
        ];
        // 100 more, all between 10 and 100 ms; a series new this step; and
        // one that saw nothing this step (left out).
        let after = vec![
            reading("wait a", &[(0.01, 10), (0.1, 110), (1.0, 110)], 5.05),
            reading("wait b", &[(0.01, 0), (0.1, 0), (1.0, 4)], 2.0),
            reading("wait idle", &[(0.01, 3), (0.1, 3), (1.0, 3)], 0.0),
        ];
        let stages = between(&before, &after);
        assert_eq!(stages.len(), 2, "{stages:?}");
        let a = &stages[0];
        assert_eq!((a.stage.as_str(), a.count), ("wait a", 100));
        assert!((a.mean_ms - 50.0).abs() < 1e-9);
        assert!((a.p50_ms - 55.0).abs() < 1e-9, "{}", a.p50_ms);
        assert!((a.p99_ms - 99.1).abs() < 1e-9, "{}", a.p99_ms);
        let b = &stages[1];
        assert_eq!((b.stage.as_str(), b.count), ("wait b", 4));
        assert!(b.p50_ms > 100.0 && b.p50_ms <= 1000.0);
    }

    #[test]
    fn beyond_the_last_bound_is_that_bound() {
        let buckets = [(0.1, 1), (1.0, 1)];
        assert_eq!(quantile(&buckets, 5, 0.99), 1.0);
    }
}
