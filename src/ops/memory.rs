//! Resident memory of this process, for the metrics path, the report a worker process sends its
//! supervisor, and `--max-worker-memory`.
//! Owns the one question "how many bytes of this process are in RAM now". Never anything else.
//!
//! The `memory-stats` crate asks the platform: `/proc/self/statm` on Linux (the kernel's RSS,
//! as `ps` shows it), `task_info` on macOS, `GetProcessMemoryInfo` (working set) on Windows.

/// Resident bytes of this process now, or `None` where the platform cannot say.
pub(crate) fn resident_bytes() -> Option<u64> {
    memory_stats::memory_stats().map(|stats| stats.physical_mem as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A running test binary has some memory resident on every platform this server supports,
    /// and far less than a terabyte.
    #[test]
    fn resident_bytes_is_plausible() {
        let bytes = resident_bytes().expect("resident memory is known on this platform");
        assert!(bytes > 64 * 1024 && bytes < (1 << 40), "{bytes}");
        // Touching 32MiB more makes it grow (the page cache is not counted, our pages are).
        let block = std::hint::black_box(vec![1u8; 32 << 20]);
        let after = resident_bytes().unwrap();
        assert!(after >= bytes + (16 << 20), "{bytes} -> {after}");
        drop(block);
    }
}
