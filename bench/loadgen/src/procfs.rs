//! The server's resident memory and CPU time, from /proc.

use anyhow::{Context, Result};

/// VmRSS of `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64> {
    status_bytes(pid, "VmRSS:")
}

/// VmHWM of `pid` (the highest VmRSS since it started), in bytes.
pub fn peak_rss_bytes(pid: u32) -> Result<u64> {
    status_bytes(pid, "VmHWM:")
}

/// A `kB` field of /proc/<pid>/status, in bytes.
fn status_bytes(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("no process {pid}"))?;
    let line = status.lines().find(|l| l.starts_with(field)).with_context(|| format!("no {field}"))?;
    let kib: u64 = line.split_whitespace().nth(1).with_context(|| format!("bad {field}"))?.parse()?;
    Ok(kib * 1024)
}

/// User + system CPU seconds of `pid` (all its threads) so far.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on Linux for every architecture this runs on.
    Some((utime + stime) / 100.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        let rss = super::rss_bytes(pid).unwrap();
        assert!(rss > 0);
        assert!(super::peak_rss_bytes(pid).unwrap() >= rss);
        assert!(super::cpu_seconds(Some(pid)).is_some());
    }
}
