//! One figure of the whole-system report: what QuickStore achieved, beside
//! the raw baseline measured in the same run, their ratio, the issue's
//! target and whether it was met.

use serde::Serialize;

/// A raw baseline: what the underlying component does without QuickStore.
#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    pub name: String,
    pub value: f64,
}

/// The bound a figure is held to. `Ratio*` bounds compare figure ÷
/// baseline; `Value*` bounds compare the figure itself.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
#[serde(tag = "kind", content = "bound", rename_all = "snake_case")]
pub enum Target {
    RatioAtLeast(f64),
    RatioAtMost(f64),
    ValueAtLeast(f64),
    ValueAtMost(f64),
}

impl Target {
    pub fn describe(&self, unit: &str) -> String {
        match self {
            Target::RatioAtLeast(b) => format!("≥ {b} × baseline"),
            Target::RatioAtMost(b) => format!("≤ {b} × baseline"),
            Target::ValueAtLeast(b) => format!("≥ {b} {unit}"),
            Target::ValueAtMost(b) => format!("≤ {b} {unit}"),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Met,
    Missed,
    NoTarget,
}

#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// Stable machine name, e.g. `command_append`.
    pub id: String,
    /// What it is, in words.
    pub name: String,
    pub unit: String,
    pub value: f64,
    pub baseline: Option<Baseline>,
    /// value ÷ baseline.
    pub ratio: Option<f64>,
    /// CPU time of this process (every thread) per event or request, over
    /// the measured interval; `None` where not measured.
    pub cpu_us_per_event: Option<f64>,
    pub target: Option<Target>,
    pub target_text: Option<String>,
    pub verdict: Verdict,
    /// For a missed target: how far off, as a factor (> 1).
    pub missed_by: Option<f64>,
    /// What the figure was measured at (rate, sizes), in words.
    pub conditions: String,
    /// Zero is a valid value (a lag), not a missing measurement.
    #[serde(skip)]
    pub zero_ok: bool,
}

impl Figure {
    pub fn new(id: &str, name: &str, unit: &str, value: f64) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            unit: unit.into(),
            value,
            baseline: None,
            ratio: None,
            cpu_us_per_event: None,
            target: None,
            target_text: None,
            verdict: Verdict::NoTarget,
            missed_by: None,
            conditions: String::new(),
            zero_ok: false,
        }
    }

    pub fn baseline(mut self, name: &str, value: f64) -> Self {
        self.ratio = (value > 0.0).then(|| self.value / value);
        self.baseline = Some(Baseline {
            name: name.into(),
            value,
        });
        self.judge()
    }

    pub fn cpu(mut self, us: Option<f64>) -> Self {
        self.cpu_us_per_event = us;
        self
    }

    pub fn target(mut self, target: Target) -> Self {
        self.target_text = Some(target.describe(&self.unit));
        self.target = Some(target);
        self.judge()
    }

    pub fn conditions(mut self, text: impl Into<String>) -> Self {
        self.conditions = text.into();
        self
    }

    /// Sets the verdict and, when missed, the factor it was missed by.
    fn judge(mut self) -> Self {
        let Some(target) = self.target else {
            return self;
        };
        // (achieved, bound, higher is better)
        let (x, bound, up) = match target {
            Target::RatioAtLeast(b) => (self.ratio, b, true),
            Target::RatioAtMost(b) => (self.ratio, b, false),
            Target::ValueAtLeast(b) => (Some(self.value), b, true),
            Target::ValueAtMost(b) => (Some(self.value), b, false),
        };
        let Some(x) = x.filter(|x| x.is_finite()) else {
            self.verdict = Verdict::Missed;
            return self;
        };
        let met = if up { x >= bound } else { x <= bound };
        self.verdict = if met { Verdict::Met } else { Verdict::Missed };
        self.missed_by = (!met).then(|| if up { bound / x.max(1e-12) } else { x / bound });
        self
    }

    /// Every number present is finite and positive, and a ratio exists
    /// where a baseline does.
    pub fn is_sane(&self) -> bool {
        let ok = |x: f64| x.is_finite() && x > 0.0;
        (ok(self.value) || (self.zero_ok && self.value == 0.0))
            && self.baseline.as_ref().is_none_or(|b| ok(b.value))
            && (self.baseline.is_none() || self.ratio.is_some_and(ok))
            && self.cpu_us_per_event.is_none_or(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ratio_target_is_judged_on_the_ratio_and_says_by_how_much_it_missed() {
        let f = Figure::new("x", "x", "1/s", 250.0)
            .baseline("raw", 1000.0)
            .target(Target::RatioAtLeast(0.5));
        assert_eq!(f.ratio, Some(0.25));
        assert_eq!(f.verdict, Verdict::Missed);
        assert_eq!(f.missed_by, Some(2.0));
        let f = Figure::new("p99", "p99", "ms", 3.0).target(Target::ValueAtMost(5.0));
        assert_eq!(f.verdict, Verdict::Met);
        assert!(f.missed_by.is_none() && f.is_sane());
        let f = Figure::new("p99", "p99", "ms", 10.0).target(Target::ValueAtMost(5.0));
        assert_eq!((f.verdict, f.missed_by), (Verdict::Missed, Some(2.0)));
    }

    #[test]
    fn a_zero_or_missing_number_is_not_sane() {
        assert!(!Figure::new("x", "x", "1/s", 0.0).is_sane());
        assert!(!Figure::new("x", "x", "1/s", 1.0)
            .baseline("raw", 0.0)
            .is_sane());
        assert!(!Figure::new("x", "x", "1/s", f64::NAN).is_sane());
        assert!(Figure::new("x", "x", "1/s", 1.0)
            .baseline("raw", 2.0)
            .is_sane());
    }
}
