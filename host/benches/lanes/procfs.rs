//! What `/proc` says about a process: CPU time, resident memory, children, and the CPU time of
//! this process's own threads by name (so the harness threads can be told from the daemon's).

use std::path::Path;

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// The fields of a `stat` file after the command name (field 3, the state, is index 0).
fn stat_fields(path: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    let after = text.rsplit_once(')')?.1;
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// User + system CPU seconds from a `stat` file (fields 14 and 15).
fn cpu_of(path: &Path) -> Option<f64> {
    let f = stat_fields(path)?;
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / TICKS_PER_SEC)
}

/// CPU seconds (user + system) a process has used, all its threads, dead ones included.
pub fn process_cpu(pid: u32) -> f64 {
    cpu_of(Path::new(&format!("/proc/{pid}/stat"))).unwrap_or(0.0)
}

/// CPU seconds used by this process's live threads whose name starts with `prefix`, plus the
/// main thread when `with_main` is set.
pub fn own_threads_cpu(prefix: &str, with_main: bool) -> f64 {
    let me = std::process::id();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut total = 0.0;
    for t in tasks.flatten() {
        let dir = t.path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let main = t.file_name().to_string_lossy() == me.to_string();
        if name.starts_with(prefix) || (with_main && main) {
            total += cpu_of(&dir.join("stat")).unwrap_or(0.0);
        }
    }
    total
}

/// `VmRSS` and `VmHWM` (peak resident set) of a process, in KiB; zero when it is gone.
pub fn rss_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The processes whose parent is `pid` (the embedded broker is the daemon's child).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            stat_fields(Path::new(&format!("/proc/{p}/stat")))
                .and_then(|f| f.get(1)?.parse::<u32>().ok())
                == Some(pid)
        })
        .collect()
}
