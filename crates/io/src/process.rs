//! What this process has used: CPU time (for budgets counted in CPU time) and resident memory
//! (for benchmarks). Linux; elsewhere the memory readings are `None`.

/// User and system CPU time of this process so far, all threads, in seconds.
pub fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given, which is valid.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return 0.0;
        }
        usage.assume_init()
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Resets the kernel's peak-RSS counter of this process (Linux `clear_refs`), returning the
/// current RSS in bytes, so that the peak after a run is that run's own.
pub fn reset_peak_rss() -> Option<usize> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    status_bytes("VmRSS")
}

/// The largest resident set of this process since it started or since [`reset_peak_rss`],
/// in bytes.
pub fn peak_rss() -> Option<usize> {
    status_bytes("VmHWM")
}

fn status_bytes(key: &str) -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_time_grows_with_work_and_memory_readings_are_plausible() {
        let before = super::cpu_seconds();
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(super::cpu_seconds() > before);
        if let (Some(now), Some(peak)) = (super::reset_peak_rss(), super::peak_rss()) {
            assert!(now > 0 && peak >= now / 2, "{now} {peak}");
        }
    }
}
