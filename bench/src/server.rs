//! The real `sessiond` binary: building it, running its CLI, and serving processes whose
//! start, address and memory the scenarios read.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// The workspace root: where `cargo build` is run to get the server.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds `sessiond` with `cargo build --bin sessiond` in `profile` ("release" or "dev")
/// and answers the executable cargo reports. Run from the workspace root, without `-p`,
/// so the features resolved are the ones this bench was built with: nothing compiles
/// twice. A build that is up to date takes well under a second.
pub fn build(profile: &str) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(&cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--bin", "sessiond", "--message-format=json-render-diagnostics"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    match profile {
        "release" => cmd.arg("--release"),
        "dev" => &mut cmd,
        other => bail!("--profile must be release or dev, got {other:?}"),
    };
    eprintln!("building the server: cargo build --bin sessiond ({profile})");
    let out = cmd.output().with_context(|| format!("running {}", cargo.to_string_lossy()))?;
    if !out.status.success() {
        bail!("cargo build --bin sessiond failed ({})", out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if msg["reason"] == "compiler-artifact"
            && msg["target"]["name"] == "sessiond"
            && let Some(exe) = msg["executable"].as_str()
        {
            return Ok(PathBuf::from(exe));
        }
    }
    bail!("cargo build did not report the sessiond executable")
}

/// How a server program is started: an executable and the words that come before the
/// contract's arguments (`--database …`, `serve …`, `account create …`). For the built
/// `sessiond` it is the path alone; `--vs CMD` gives any command line, split into words
/// as a POSIX shell would (quotes and backslashes; no variables, globs or pipes).
#[derive(Debug, Clone)]
pub struct Program {
    argv: Vec<OsString>,
}

impl Program {
    /// The executable at `path`, with no words of its own.
    pub fn exe(path: &Path) -> Program {
        Program { argv: vec![path.as_os_str().to_owned()] }
    }

    /// A command line such as `/tmp/sessiond-old` or `"python3 -m otherimpl"`. A first
    /// word holding a `/` is a path, made absolute here: servers run in scratch
    /// directories. A bare name is looked up in `PATH` when it runs.
    pub fn parse(command: &str) -> anyhow::Result<Program> {
        let words = shlex::split(command)
            .with_context(|| format!("cannot split {command:?} into words (a quote unclosed?)"))?;
        let (first, rest) = words.split_first().context("the command is empty")?;
        let exe = if first.contains('/') {
            std::fs::canonicalize(first).with_context(|| format!("no program at {first}"))?
        } else {
            PathBuf::from(first)
        };
        let mut argv = vec![exe.into_os_string()];
        argv.extend(rest.iter().map(OsString::from));
        Ok(Program { argv })
    }

    /// The command line, each word quoted when it needs to be.
    pub fn display(&self) -> String {
        let words: Vec<String> =
            self.argv.iter().map(|w| w.to_string_lossy().into_owned()).collect();
        shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "))
    }
}

/// A command of `program` in `cwd` (a scratch directory, so no stray config.toml is
/// read) with none of the caller's `SESSIOND_*` or `RUST_LOG` variables.
fn command(program: &Program, cwd: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(&program.argv[0]);
    cmd.args(&program.argv[1..]).current_dir(cwd).kill_on_drop(true);
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("SESSIOND_") || k == "RUST_LOG") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd
}

/// Runs a one-shot CLI command (e.g. `migrate`) and answers its stdout.
pub async fn cli(bin: &Path, cwd: &Path, args: &[&str]) -> anyhow::Result<String> {
    cli_program(&Program::exe(bin), cwd, args, None).await
}

/// Runs a one-shot CLI command of `program`, with `stdin` as its standard input (e.g. a
/// password for `--password-stdin`); answers its stdout.
pub async fn cli_program(
    program: &Program,
    cwd: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> anyhow::Result<String> {
    let what = || format!("{} {}", program.display(), args.join(" "));
    let mut child = command(program, cwd, &[])
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", what()))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A program that exits without reading its input closes the pipe: not our error,
        // its exit status says what happened.
        let _ = pipe.write_all(format!("{text}\n").as_bytes()).await;
    }
    let out = child.wait_with_output().await.with_context(|| format!("running {}", what()))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            what(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A serving `sessiond`; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    /// Read end of stdout, kept open so the server never writes into a closed pipe.
    _stdout: Lines<BufReader<ChildStdout>>,
}

/// When a start reached its milestones, from the instant before `exec`.
#[derive(Debug, Clone, Copy)]
pub struct Started {
    pub spawned_at: Instant,
    pub to_listening: Duration,
}

impl Server {
    /// `sessiond --database DB serve --listen 127.0.0.1:0` in `cwd`, with `env`; waits for
    /// the `listening on http://…` line. Logs (stderr) go to a file in `cwd`.
    pub async fn start(
        bin: &Path,
        cwd: &Path,
        database: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<(Server, Started)> {
        Server::start_program(&Program::exe(bin), cwd, database, env).await
    }

    /// [`Server::start`] for any program with the contract's CLI.
    pub async fn start_program(
        program: &Program,
        cwd: &Path,
        database: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<(Server, Started)> {
        let stderr_path = cwd.join(format!("sessiond-{}.log", uuid::Uuid::new_v4()));
        let stderr = std::fs::File::create(&stderr_path)
            .with_context(|| format!("creating {}", stderr_path.display()))?;
        let mut cmd = command(program, cwd, env);
        cmd.args(["--database", database, "serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let spawned_at = Instant::now();
        let mut child = cmd.spawn().with_context(|| format!("starting {}", program.display()))?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
        let to_listening = spawned_at.elapsed();
        let line = match first {
            Ok(Ok(Some(line))) => line,
            other => {
                let _ = child.start_kill();
                let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                bail!("no `listening on` line ({other:?}); server log:\n{log}");
            }
        };
        let addr = line
            .strip_prefix("listening on http://")
            .with_context(|| format!("unexpected first line {line:?}"))?
            .parse()
            .with_context(|| format!("address in {line:?}"))?;
        let pid = child.id().context("server pid")?;
        let server = Server { child, addr, pid, _stdout: lines };
        Ok((server, Started { spawned_at, to_listening }))
    }

    /// Stops the server (SIGKILL: nothing of a scratch database needs to survive) and
    /// waits for it to be gone.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child.start_kill().context("killing the server")?;
        self.child.wait().await.context("waiting for the server to exit")?;
        Ok(())
    }

    /// The server's memory now, from /proc.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .context("reading /proc/PID/status")?;
        let field = |name: &str| -> anyhow::Result<u64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .with_context(|| format!("{name} in /proc/PID/status"))?;
            let kb = line.split_whitespace().nth(1).context("a value")?;
            kb.parse::<u64>().with_context(|| format!("{name}: {kb:?}"))
        };
        Ok(Memory { rss_kb: field("VmRSS:")?, peak_kb: field("VmHWM:")? })
    }

    /// CPU time the server has used so far (user + system).
    pub fn cpu(&self) -> anyhow::Result<Duration> {
        cpu_of(&format!("/proc/{}/stat", self.pid))
    }

    /// Bytes the server has handed to `write` so far (`wchar` of /proc/PID/io): mostly the
    /// log's frames and the checkpoints' copies into the database file, plus its own log
    /// lines and HTTP answers.
    pub fn written(&self) -> anyhow::Result<u64> {
        let io = std::fs::read_to_string(format!("/proc/{}/io", self.pid))
            .context("reading /proc/PID/io")?;
        let line =
            io.lines().find_map(|l| l.strip_prefix("wchar:")).context("wchar in /proc/PID/io")?;
        line.trim().parse().with_context(|| format!("wchar: {line:?}"))
    }

    /// Resets the peak (VmHWM) to the current RSS, so a later peak is that of what ran
    /// in between (Linux: `echo 5 > /proc/PID/clear_refs`).
    pub fn reset_peak(&self) -> anyhow::Result<()> {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5")
            .context("resetting the peak RSS through /proc/PID/clear_refs")
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss_kb: u64,
    pub peak_kb: u64,
}

/// CPU time (user + system) of the process whose `/proc/…/stat` is at `path`.
/// Linux counts it in clock ticks of 1/100 s (USER_HZ, 100 on every mainstream
/// architecture).
pub fn cpu_of(path: &str) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    // Fields after the command name (which may hold spaces) closed by the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("stat format")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after ')'.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields.get(i).context("stat field")?.parse::<u64>().context("stat ticks")
    };
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}
