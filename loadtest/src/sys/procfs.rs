//! Readers for a process's CPU time (`/proc/<pid>/stat`, and the nanosecond
//! `/proc/<pid>/task/*/schedstat`) and resident memory (`/proc/<pid>/status`).
//!
//! The parsers are pure functions over the file text so they can be tested without a process; the
//! readers add the I/O. `stat` counts in clock ticks (10 ms at USER_HZ 100: a 0.3 CPU-s window
//! would be ±3 %), so the benchmark's windows use [`cpu_time_precise`], the sum of every live
//! thread's `sum_exec_runtime` in nanoseconds.

use std::fs;
use std::time::Duration;

use super::ffi::clock_ticks_per_second;
use crate::{Error, Result};

/// Which process to read: ourselves or another pid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pid {
    /// The calling process (`/proc/self`).
    SelfProcess,
    /// Another process by id.
    Other(u32),
}

impl Pid {
    fn dir(self) -> String {
        match self {
            Self::SelfProcess => "/proc/self".to_owned(),
            Self::Other(pid) => format!("/proc/{pid}"),
        }
    }
}

/// Parses utime + stime (in clock ticks) out of the text of `/proc/<pid>/stat`.
///
/// The command name (field 2) may contain spaces and parentheses, so fields are counted from the
/// last `)`.
pub fn parse_stat_ticks(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After the comm field: state(3) ... utime is field 14, stime 15 → indexes 11 and 12 here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Parses `VmRSS` (in bytes) out of the text of `/proc/<pid>/status`.
pub fn parse_status_rss(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_ascii_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU time (user + system, all threads) consumed so far by the process.
pub fn cpu_time(pid: Pid) -> Result<Duration> {
    let path = format!("{}/stat", pid.dir());
    let text = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let ticks = parse_stat_ticks(&text).ok_or_else(|| Error::Proc(path.clone()))?;
    let hz = clock_ticks_per_second();
    Ok(Duration::from_secs(ticks / hz) + Duration::from_nanos((ticks % hz) * 1_000_000_000 / hz))
}

/// Parses the first field of `/proc/<pid>/task/<tid>/schedstat`: time on the CPU (ns).
pub fn parse_schedstat_ns(text: &str) -> Option<u64> {
    text.split_ascii_whitespace().next()?.parse().ok()
}

/// Parses the second field of a `schedstat`: time runnable but waiting for a CPU (ns).
pub fn parse_schedstat_wait_ns(text: &str) -> Option<u64> {
    text.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// Time the process's live threads spent runnable but waiting for a CPU (the machine's
/// contention as this process saw it), summed; zero without schedstat.
pub fn run_queue_wait(pid: Pid) -> Duration {
    let dir = format!("{}/task", pid.dir());
    let ns = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|text| parse_schedstat_wait_ns(&text))
        .sum();
    Duration::from_nanos(ns)
}

/// CPU time of the process at nanosecond resolution: the sum over its live threads of their
/// `schedstat` run time (threads that already exited are not counted, so compare two readings
/// taken while the same threads live). Falls back to [`cpu_time`] without schedstat.
pub fn cpu_time_precise(pid: Pid) -> Result<Duration> {
    let dir = format!("{}/task", pid.dir());
    let Ok(tasks) = fs::read_dir(&dir) else {
        return cpu_time(pid);
    };
    let mut ns = 0u64;
    for task in tasks.flatten() {
        let text = fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        match parse_schedstat_ns(&text) {
            Some(t) => ns += t,
            None if text.is_empty() => {} // the thread exited between listing and reading
            None => return cpu_time(pid),
        }
    }
    Ok(Duration::from_nanos(ns))
}

/// Parses `voluntary_ctxt_switches` out of the text of `/proc/<pid>/task/<tid>/status`: how often
/// the thread went to sleep waiting (for a packet, a timer), i.e. its wake-ups.
pub fn parse_status_wakeups(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|l| l.starts_with("voluntary_ctxt_switches:"))?;
    line.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// Voluntary context switches (= wake-ups) of every live thread of the process, summed.
pub fn wakeups(pid: Pid) -> Result<u64> {
    let dir = format!("{}/task", pid.dir());
    let tasks = fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    Ok(tasks
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("status")).ok())
        .filter_map(|text| parse_status_wakeups(&text))
        .sum())
}

/// Resident set size of the process in bytes.
pub fn rss_bytes(pid: Pid) -> Result<u64> {
    let path = format!("{}/status", pid.dir());
    let text = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    parse_status_rss(&text).ok_or(Error::Proc(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_in_comm() {
        let text = "1234 (turn server) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 4 0 100 0 0";
        assert_eq!(parse_stat_ticks(text), Some(300));
    }

    #[test]
    fn stat_garbage_is_none() {
        assert_eq!(parse_stat_ticks("no parens here"), None);
        assert_eq!(parse_stat_ticks("1 (x) S 1"), None);
    }

    #[test]
    fn status_rss() {
        let text = "Name:\tturnserver\nVmPeak:\t  9000 kB\nVmRSS:\t    1536 kB\nThreads:\t4\n";
        assert_eq!(parse_status_rss(text), Some(1536 * 1024));
        assert_eq!(parse_status_rss("Name: x\n"), None);
        let text = "Name:\tx\nvoluntary_ctxt_switches:\t812\nnonvoluntary_ctxt_switches:\t3\n";
        assert_eq!(parse_status_wakeups(text), Some(812));
    }

    #[test]
    fn schedstat_first_field() {
        assert_eq!(
            parse_schedstat_ns("574057364 557292 28\n"),
            Some(574_057_364)
        );
        assert_eq!(parse_schedstat_ns(""), None);
        assert_eq!(
            parse_schedstat_wait_ns("574057364 557292 28\n"),
            Some(557_292)
        );
    }

    /// Keeps this thread busy for `d` of wall time.
    fn spin(d: Duration) {
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < d {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
    }

    #[test]
    fn precise_cpu_time_moves_with_work() {
        let before = cpu_time_precise(Pid::SelfProcess).unwrap();
        spin(Duration::from_millis(200));
        let used = cpu_time_precise(Pid::SelfProcess).unwrap() - before;
        assert!(used >= Duration::from_millis(20), "{used:?}");
    }

    #[test]
    fn own_process_is_readable_and_moves() {
        let before = cpu_time(Pid::SelfProcess).unwrap();
        spin(Duration::from_millis(200));
        assert!(cpu_time(Pid::SelfProcess).unwrap() > before);
        assert!(rss_bytes(Pid::SelfProcess).unwrap() > 100 * 1024);
    }
}
