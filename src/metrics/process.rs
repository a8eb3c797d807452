//! The `process_*` metrics every Prometheus client library exports, read from `/proc` at each
//! scrape: resident and virtual memory, CPU seconds, start time, open and maximum descriptors.

use super::FloatGauge;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// The process gauges, set when scraped.
#[derive(Default)]
pub(super) struct ProcessMetrics {
    resident: Gauge,
    virtual_memory: Gauge,
    cpu_seconds: Counter<f64, AtomicU64>,
    start_time: FloatGauge,
    open_fds: Gauge,
    max_fds: Gauge,
}

impl ProcessMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            self.resident.clone(),
        );
        registry.register(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            self.virtual_memory.clone(),
        );
        registry.register(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            self.cpu_seconds.clone(),
        );
        registry.register(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            self.start_time.clone(),
        );
        registry.register(
            "process_open_fds",
            "Number of open file descriptors.",
            self.open_fds.clone(),
        );
        registry.register(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            self.max_fds.clone(),
        );
    }

    /// Reads the figures from `/proc`; what cannot be read keeps its last value.
    pub fn refresh(&self) {
        // SAFETY: sysconf has no preconditions.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK) as f64,
                libc::sysconf(libc::_SC_PAGESIZE) as i64,
            )
        };
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
            // Fields after the command name, which is in parentheses and may hold spaces.
            && let Some((_, rest)) = stat.rsplit_once(") ")
        {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let field = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
            // rest[0] is field 3 (state): utime is 14, stime 15, starttime 22, vsize 23, rss 24.
            if let (Some(utime), Some(stime)) = (field(11), field(12)) {
                let total = (utime + stime) / ticks;
                let seen = self.cpu_seconds.get();
                if total > seen {
                    self.cpu_seconds.inc_by(total - seen);
                }
            }
            if let (Some(start), Some(boot)) = (field(19), boot_time()) {
                self.start_time.set(boot + start / ticks);
            }
            if let Some(vsize) = field(20) {
                self.virtual_memory.set(vsize as i64);
            }
            if let Some(rss) = field(21) {
                self.resident.set(rss as i64 * page);
            }
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(fds.count() as i64);
        }
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is a valid rlimit to fill.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            self.max_fds.set(limit.rlim_cur as i64);
        }
    }
}

/// The boot time in Unix seconds (`btime` of `/proc/stat`).
fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}
