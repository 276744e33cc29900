//! One line of results per scenario.

use hdrhistogram::Histogram;
use std::time::Duration;

pub struct Report {
    pub name: String,
    pub operations: u64,
    pub elapsed: Duration,
    pub unit: &'static str,
    /// Per-operation latency in microseconds, when measured per operation.
    pub latency: Option<Histogram<u64>>,
    pub errors: u64,
}

impl Report {
    pub fn throughput(&self) -> f64 {
        self.operations as f64 / self.elapsed.as_secs_f64()
    }

    pub fn print(&self) {
        let mut line = format!(
            "{:<34} {:>10.0} {}/s   ({} in {:.2}s, {} errors)",
            self.name,
            self.throughput(),
            self.unit,
            self.operations,
            self.elapsed.as_secs_f64(),
            self.errors
        );
        if let Some(h) = &self.latency {
            line.push_str(&format!(
                "   p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                h.value_at_quantile(0.50) as f64 / 1000.0,
                h.value_at_quantile(0.99) as f64 / 1000.0,
                h.max() as f64 / 1000.0
            ));
        }
        println!("{line}");
    }
}
