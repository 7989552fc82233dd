//! Readers for a process's CPU time (`/proc/<pid>/stat`) and resident memory (`/proc/<pid>/status`).
//!
//! The parsers are pure functions over the file text so they can be tested without a process; the
//! readers add the I/O. CPU time is reported in seconds (utime + stime, all threads of the process).

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
    }

    #[test]
    fn own_process_is_readable_and_moves() {
        let before = cpu_time(Pid::SelfProcess).unwrap();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(200) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        assert!(cpu_time(Pid::SelfProcess).unwrap() > before);
        assert!(rss_bytes(Pid::SelfProcess).unwrap() > 100 * 1024);
    }
}
