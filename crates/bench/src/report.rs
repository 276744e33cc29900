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
    /// CPU seconds spent during the run, by process group (see [`CpuTimes`]).
    pub cpu: Option<CpuTimes>,
}

/// CPU time (user + system) of the processes on this machine that take part in a run: this
/// process (clients and in-process services), the PostgreSQL server (every backend) and the
/// RabbitMQ server. Read from `/proc` (Linux); empty elsewhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTimes {
    pub bench: f64,
    pub postgres: f64,
    pub rabbitmq: f64,
}

impl CpuTimes {
    pub fn now() -> Self {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Self::default();
        };
        let ticks = 100.0; // USER_HZ, fixed at 100 on Linux
        let me = std::process::id().to_string();
        let mut t = Self::default();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let comm = &stat[open + 1..close];
            let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
            let used = fields.get(11..13).map_or(0.0, |f| {
                f.iter().filter_map(|v| v.parse::<f64>().ok()).sum::<f64>()
            }) / ticks;
            if pid == me {
                t.bench += used;
            } else if comm.starts_with("postgres") {
                t.postgres += used;
            } else if comm == "beam.smp" {
                t.rabbitmq += used;
            }
        }
        t
    }

    pub fn since(self, earlier: Self) -> Self {
        Self {
            bench: self.bench - earlier.bench,
            postgres: self.postgres - earlier.postgres,
            rabbitmq: self.rabbitmq - earlier.rabbitmq,
        }
    }
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
        if let Some(cpu) = &self.cpu {
            let per = |secs: f64| 1000.0 * secs / self.operations as f64;
            println!(
                "{:<34} CPU per {}: {:.2} ms here (clients and services), {:.2} ms PostgreSQL, {:.2} ms RabbitMQ",
                "",
                self.unit.trim_end_matches('s'),
                per(cpu.bench),
                per(cpu.postgres),
                per(cpu.rabbitmq)
            );
        }
    }
}
