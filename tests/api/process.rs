//! Driving the real `sessiond` binary: CLI commands and a served process.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sessiond")
}

/// A command in `dir` (so no stray config.toml is read) with no SESSIOND_* variables
/// but those given.
fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.current_dir(dir).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("SESSIOND_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd
}

#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    #[track_caller]
    pub fn assert_ok(&self) {
        assert_eq!(self.code, 0, "{self:?}");
    }

    /// Exit status `code`, exactly one line on stderr, containing `needle`.
    #[track_caller]
    pub fn assert_fails(&self, code: i32, needle: &str) {
        assert_eq!(self.code, code, "{self:?}");
        assert_eq!(self.stderr.lines().count(), 1, "one line on stderr: {self:?}");
        assert!(self.stderr.contains(needle), "stderr should name {needle:?}: {self:?}");
    }
}
/// An HTTP client for a served process, with a generous timeout (two shared cores).
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

/// One request to a served process: its status, and its body as JSON (`Null` otherwise).
pub fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = client().request(method.parse().unwrap(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, serde_json::from_str(&resp.text().unwrap()).unwrap_or(serde_json::Value::Null))
}

/// Logs in at a served process: its access and refresh tokens.
pub fn login(base: &str, email: &str, password: &str) -> (String, String) {
    let (status, body) = call(
        "POST",
        &format!("{base}/auth/login"),
        None,
        Some(serde_json::json!({"email": email, "password": password})),
    );
    assert_eq!(status, 200, "{body}");
    (body["access_token"].as_str().unwrap().into(), body["refresh_token"].as_str().unwrap().into())
}

pub fn run(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Out {
    run_within(dir, args, env, stdin, Duration::from_secs(120))
}

/// [`run`], killing the process (and failing the test) if it has not exited within
/// `limit`: for commands that must fail, such as a `serve` that must refuse to start.
pub fn run_within(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
    limit: Duration,
) -> Out {
    let mut child = command(dir, args, env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        // A command refused at parse time exits without reading: a broken pipe is fine.
        let _ = input.write_all(s.as_bytes());
    }
    drop(input);
    let pid = child.id();
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(limit).is_err() {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            return true;
        }
        false
    });
    let out = child.wait_with_output().unwrap();
    let _ = done.send(());
    assert!(!watchdog.join().unwrap(), "{args:?} still running after {limit:?}: killed");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `user create`; the password comes from stdin when given, else it is generated.
pub fn user_create(
    dir: &Path,
    db: &str,
    account: &str,
    email: &str,
    role: &str,
    password: Option<&str>,
) -> Out {
    let mut args = vec![
        "user",
        "create",
        "--account",
        account,
        "--email",
        email,
        "--role",
        role,
        "--database",
        db,
    ];
    if password.is_some() {
        args.push("--password-stdin");
    }
    run(dir, &args, &[], password)
}

/// `account create` then `user create` with a known password; returns (account, user).
pub fn seed_owner(dir: &Path, db: &str, email: &str, password: &str) -> (String, String) {
    let acc = run(dir, &["account", "create", "--name", "Acme", "--database", db], &[], None);
    acc.assert_ok();
    let account = acc.json()["account_id"].as_str().unwrap().to_owned();
    let user = user_create(dir, db, &account, email, "owner", Some(&format!("{password}\n")));
    user.assert_ok();
    (account, user.json()["user_id"].as_str().unwrap().to_owned())
}

/// A running `sessiond serve`; killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    pub first_line: String,
    stdout_rest: mpsc::Receiver<String>,
    stderr_path: PathBuf,
}

impl Server {
    /// Starts the binary and waits for its `listening on` line.
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let stderr_path = dir.join(format!("stderr-{}.log", uuid::Uuid::new_v4()));
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut child = command(dir, args, env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first_line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "no listening line; stderr: {}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
        };
        let base = first_line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"))
            .to_owned();
        Server { child, base, first_line, stdout_rest: rx, stderr_path }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Where stderr goes; still readable after the process is gone.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr_path
    }

    /// Lines printed on stdout after the first one, so far.
    pub fn more_stdout(&self) -> Vec<String> {
        self.stdout_rest.try_iter().collect()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. "TERM") and waits for the exit.
    pub fn stop_with(self, signal: &str) -> ExitStatus {
        let status =
            Command::new("kill").args([&format!("-{signal}"), &self.pid().to_string()]).status();
        assert!(status.unwrap().success());
        self.wait()
    }

    /// Waits for the process to exit (after a signal sent some other way).
    pub fn wait(mut self) -> ExitStatus {
        for _ in 0..500 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server did not exit");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
