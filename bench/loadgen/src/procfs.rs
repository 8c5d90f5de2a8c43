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

/// Pss of `pid` (each resident page divided by the number of processes mapping it), in
/// bytes. Unlike VmRSS it does not count a shared file page once per mapping of it: our
/// server maps each component's memory image (copy-on-write, from the compiled file) into
/// every instance, and those clean pages are one copy in memory however many instances map them.
pub fn pss_bytes(pid: u32) -> Result<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).with_context(|| format!("no process {pid}"))?;
    kib_field(&rollup, "Pss:")
}

/// A `kB` field of /proc/<pid>/status, in bytes.
fn status_bytes(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("no process {pid}"))?;
    kib_field(&status, field)
}

/// The `field:  N kB` line of a /proc text, in bytes.
fn kib_field(text: &str, field: &str) -> Result<u64> {
    let line = text.lines().find(|l| l.starts_with(field)).with_context(|| format!("no {field}"))?;
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
        assert!(super::pss_bytes(pid).unwrap() > 0);
        assert!(super::cpu_seconds(Some(pid)).is_some());
    }
}
