//! sessiond-bench: the performance benchmark of issue 3.
//!
//! Builds the release `sessiond` (or takes `--server PATH`), starts the real binary on
//! loopback against database files it seeds itself, and runs eight scenarios: refresh
//! throughput and latency, the in-process ceiling, bulk revoke, policy reads and writes,
//! cold start, memory, login, and (issue 13) memory through a login storm; with
//! `--postgres URL`, a ninth on PostgreSQL (issue 12). Prints the Markdown block of
//! docs/PERFORMANCE.md on stdout (progress goes to stderr) and writes every figure to a
//! JSON file.
//!
//! With `--vs CMD`, it runs instead a smaller set of scenarios against sessiond and against
//! another implementation of the same API, prepared alike through the public surface, and
//! prints the two side by side with their ratios (see `vs/`).
//!
//! The load generator runs on one thread (a current-thread runtime), so it takes as
//! little as it can of the cores it shares with the server.

mod client;
mod load;
mod machine;
mod report;
mod scenarios;
mod seed;
mod server;
mod sizes;
mod vs;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use crate::machine::Machine;
use crate::report::Results;
use crate::scenarios::{
    Bench, Sync, ceiling, cold_start, login, login_memory, policy, postgres, refresh, revoke,
};
use crate::sizes::Sizes;

#[derive(Debug, Parser)]
#[command(name = "sessiond-bench", about = "Benchmark the real sessiond binary (issue 3)")]
struct Args {
    /// Tiny sizes: every scenario end to end in seconds. For the smoke test, not figures.
    #[arg(long)]
    quick: bool,
    /// The sessiond executable to measure. Default: build it with
    /// `cargo build --bin sessiond` in the --profile and use what cargo reports.
    #[arg(long, value_name = "PATH")]
    server: Option<PathBuf>,
    /// Cargo profile of the server built when --server is not given: release or dev.
    #[arg(long, default_value = "release")]
    profile: String,
    /// Directory for the JSON results (created if needed).
    #[arg(long, default_value = "bench-results", value_name = "DIR")]
    out: PathBuf,
    /// Where scratch databases go (default: the system's temporary directory). It must be
    /// on a real disk: on tmpfs, fsync costs nothing and synchronous=full looks free.
    #[arg(long, value_name = "DIR")]
    scratch: Option<PathBuf>,
    /// Also replace the results block between the markers in this Markdown file
    /// (docs/PERFORMANCE.md).
    #[arg(long, value_name = "FILE")]
    update_doc: Option<PathBuf>,
    /// Run only these scenarios (numbers 1-9, comma-separated). For development.
    #[arg(long, value_delimiter = ',', value_name = "N,…")]
    only: Vec<u8>,
    /// Also run scenario 9 on PostgreSQL: a server where the bench may create a scratch
    /// database (dropped at the end), e.g. `bash .ci/postgres` and
    /// `--postgres "$SESSIOND_TEST_DATABASE_URL"`. Never printed.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Start every server with `database.group_commit = false` (one transaction per
    /// write), to compare a whole run with grouping off. Scenario 1 measures its control
    /// without grouping in every run regardless.
    #[arg(long)]
    no_group_commit: bool,
    /// Side by side: run the --vs scenarios (refresh, policy, login, bulk revoke, cold
    /// start at sizes a login-made data set allows) against sessiond and against CMD,
    /// another server with the same CLI and HTTP API, and print the ratios. CMD is split
    /// into words as a shell would (quotes, backslashes; no variables: use `env VAR=…`),
    /// e.g. `--vs /tmp/sessiond-old` or `--vs "python3 -m otherimpl"`; the contract's
    /// arguments (`--database FILE serve --listen 127.0.0.1:0`, `account create …`) follow.
    #[arg(long, value_name = "CMD")]
    vs: Option<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(0) => ExitCode::SUCCESS,
        Ok(errors) => {
            eprintln!("sessiond-bench: {errors} requests failed (see the JSON file)");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("sessiond-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the scenarios asked for; answers the number of failed requests.
async fn run(args: Args) -> anyhow::Result<u64> {
    let sizes = if args.quick { Sizes::quick() } else { Sizes::full() };
    let bin = match &args.server {
        // Absolute: the server runs with a scratch directory as its working directory.
        Some(path) => {
            std::fs::canonicalize(path).with_context(|| format!("--server {}", path.display()))?
        }
        None => server::build(&args.profile)?,
    };
    anyhow::ensure!(bin.is_file(), "no server executable at {}", bin.display());
    let scratch = match &args.scratch {
        Some(dir) => tempfile::Builder::new().prefix("sessiond-bench-").tempdir_in(dir),
        None => tempfile::Builder::new().prefix("sessiond-bench-").tempdir(),
    }
    .context("creating the scratch directory")?;
    if let Some(command) = &args.vs {
        return run_vs(&args, command, bin, scratch.path()).await;
    }
    let password_hash =
        tokio::task::spawn_blocking(|| sessiond::auth::password::hash_blocking(seed::PASSWORD))
            .await??;
    let bench = Bench {
        bin: bin.clone(),
        scratch: scratch.path().to_owned(),
        sizes,
        password_hash,
        group_commit: !args.no_group_commit,
    };
    let want = |n: u8| args.only.is_empty() || args.only.contains(&n);
    let started = sessiond::clock::Clock::system().now();
    let fsync_before = machine::fsync_probe(scratch.path())?;
    let mut results = Results {
        started_at: started.format("%Y-%m-%d %H:%M UTC").to_string(),
        quick: args.quick,
        machine: Machine::probe(fsync_before),
        server: bin.display().to_string(),
        refresh: vec![],
        ceiling: vec![],
        revoke: vec![],
        policy: None,
        cold_start: vec![],
        memory: vec![],
        login: None,
        login_memory: None,
        postgres: None,
        targets: vec![],
        errors: 0,
    };

    if want(5) {
        progress("5. cold start");
        results.cold_start = cold_start::run(&bench).await?;
    }
    // Each refresh run follows its ceiling at once, so that both see the same disk: on a
    // shared machine fsync latency drifts from one minute to the next.
    if want(1) || want(2) || want(4) || want(6) || want(7) {
        progress("2. in-process ceiling (synchronous=full)");
        results.ceiling.push(ceiling::run(&bench, Sync::Full).await?);
        // The control of issue 11's targets: the same load without group commit, each
        // level right beside the grouped one.
        let mut control = None;
        if want(1) && bench.group_commit {
            progress("1. refresh (synchronous=full), with group commit and without (the control)");
            control = Some(refresh::Control::start(&bench, Sync::Full, false).await?);
        } else {
            progress("1. refresh (synchronous=full) and 6. memory");
        }
        let grouped = bench.group_commit;
        let (levels, memory, server, mut data) =
            refresh::run(&bench, Sync::Full, grouped, control.as_mut()).await?;
        results.refresh.extend(levels);
        results.memory.push(memory);
        if let Some(control) = control {
            results.refresh.extend(control.levels);
            control.server.stop().await?;
        }
        if want(4) {
            progress("4. policy");
            results.policy = Some(policy::run(&bench, &server, &data).await?);
        }
        if want(7) {
            progress("7. login");
            results.login = Some(login::run(&bench, &server, &mut data).await?);
        }
        server.stop().await?;
    }
    if want(1) || want(2) || want(6) {
        progress("2. in-process ceiling (synchronous=normal)");
        results.ceiling.push(ceiling::run(&bench, Sync::Normal).await?);
        progress("1. refresh (synchronous=normal)");
        let (levels, memory, server, _) =
            refresh::run(&bench, Sync::Normal, bench.group_commit, None).await?;
        results.refresh.extend(levels);
        results.memory.push(memory);
        server.stop().await?;
    }
    if want(3) {
        progress("3. bulk revoke");
        results.revoke = revoke::run(&bench).await?;
    }
    if want(8) {
        progress("8. memory through a login storm");
        results.login_memory = Some(login_memory::run(&bench).await?);
    }
    if let Some(url) = &args.postgres
        && want(9)
    {
        progress("9. PostgreSQL (refresh with 1 and 3 processes, bulk revoke)");
        results.postgres = Some(postgres::run(&bench, url).await?);
    }

    results.machine.load_after = machine::load_average();
    results.machine.fsync_after = machine::fsync_probe(scratch.path())?;
    results.evaluate();
    let stamp = started.format("%Y%m%dT%H%M%SZ").to_string();
    publish(&args, &results.markdown(), &results, &stamp, (report::BEGIN, report::END))?;
    Ok(results.errors)
}

/// `--vs CMD`: sessiond (`bin`) and CMD side by side; answers the errors of both.
async fn run_vs(
    args: &Args,
    command: &str,
    bin: PathBuf,
    scratch: &std::path::Path,
) -> anyhow::Result<u64> {
    anyhow::ensure!(
        args.only.is_empty() && args.postgres.is_none() && !args.no_group_commit,
        "--only, --postgres and --no-group-commit do not apply with --vs (its scenarios and \
         servers' configuration are fixed)"
    );
    let other = server::Program::parse(command).with_context(|| format!("--vs {command}"))?;
    let started = sessiond::clock::Clock::system().now();
    let machine = Machine::probe(machine::fsync_probe(scratch)?);
    let programs = [server::Program::exe(&bin), other];
    let started_at = started.format("%Y-%m-%d %H:%M UTC").to_string();
    let mut results = vs::run(programs, scratch, args.quick, started_at, machine).await?;
    results.machine.load_after = machine::load_average();
    results.machine.fsync_after = machine::fsync_probe(scratch)?;
    let stamp = format!("{}-vs", started.format("%Y%m%dT%H%M%SZ"));
    publish(args, &results.markdown(), &results, &stamp, (vs::report::BEGIN, vs::report::END))?;
    Ok(results.total_errors())
}

/// Prints the block, writes the JSON file `<stamp>.json`, and with --update-doc replaces
/// the block between `markers` in that file.
fn publish(
    args: &Args,
    markdown: &str,
    results: &impl serde::Serialize,
    stamp: &str,
    markers: (&str, &str),
) -> anyhow::Result<()> {
    println!("{markdown}");
    let json_path = write_json(&args.out, results, stamp)?;
    eprintln!("results: {}", json_path.display());
    if let Some(doc) = &args.update_doc {
        let text =
            std::fs::read_to_string(doc).with_context(|| format!("reading {}", doc.display()))?;
        std::fs::write(doc, report::splice_between(&text, markdown, markers)?)
            .with_context(|| format!("writing {}", doc.display()))?;
        eprintln!("updated: {}", doc.display());
    }
    Ok(())
}

fn progress(what: &str) {
    eprintln!("sessiond-bench: {what}");
}

fn write_json(
    dir: &std::path::Path,
    results: &impl serde::Serialize,
    stamp: &str,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{stamp}.json"));
    let json = serde_json::to_vec_pretty(results).context("serialising the results")?;
    std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
