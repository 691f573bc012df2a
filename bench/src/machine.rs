//! What the run ran on: CPUs, kernel, how busy the machine was, which commit.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    /// 1-minute load average when the run started.
    pub load_before: f64,
    /// … and when it ended: above the CPU count, other work competed with the bench.
    pub load_after: f64,
    /// `git describe --always --dirty` of the workspace, when git can tell.
    pub commit: Option<String>,
    /// The scratch disk's fsync latency before and after the run: what every commit
    /// under synchronous=full waits for.
    pub fsync_before: Fsync,
    pub fsync_after: Fsync,
}

/// Latency of a 4 KiB write followed by fdatasync, on the scratch disk.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Fsync {
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Times 200 × (write 4 KiB, fdatasync) in a file under `dir`.
pub fn fsync_probe(dir: &Path) -> anyhow::Result<Fsync> {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).context("creating the fsync probe")?;
    let page = [0x5au8; 4096];
    let mut took = Vec::with_capacity(200);
    for _ in 0..200 {
        file.write_all(&page).context("writing the fsync probe")?;
        let began = Instant::now();
        file.sync_data().context("fdatasync")?;
        took.push(began.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path).context("removing the fsync probe")?;
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(Fsync { p50_ms: ms(took[took.len() / 2]), p99_ms: ms(took[took.len() * 99 / 100]) })
}

impl Machine {
    pub fn probe(fsync_before: Fsync) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned());
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model,
            kernel: format!("Linux {kernel}"),
            load_before: load_average(),
            load_after: 0.0,
            commit: commit(),
            fsync_before,
            fsync_after: Fsync::default(),
        }
    }
}

pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

fn commit() -> Option<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new("git")
        .current_dir(root)
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
