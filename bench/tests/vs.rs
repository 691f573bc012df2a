//! `--vs CMD` end to end in quick mode, against a debug build of the server: with
//! sessiond itself as the other server, both columns and the ratios of every scenario are
//! reported with no error; with a copy configured to refuse some of the bench's requests,
//! those answers are counted as the other's errors and the run still reports everything.
//! No figure or ratio is checked against a value: timings are not test results.

#![allow(clippy::unwrap_used)] // test helpers, as in tests/api

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

/// The debug `sessiond` the bench builds for its own side (`--profile dev`) before it
/// starts anything, so it is there by the time the other command runs.
fn debug_sessiond() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sessiond-bench")).with_file_name("sessiond")
}

/// Runs `sessiond-bench --quick --vs CMD`; answers the output and the JSON results.
fn run_vs(command: &str) -> (Output, String, Value) {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_sessiond-bench"))
        .args(["--quick", "--profile", "dev", "--vs", command, "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let files: Vec<_> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(files[0].to_string_lossy().ends_with("-vs.json"), "{files:?}");
    let json = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    (run, stdout, json)
}

/// Every (scenario, pair) of the run, by the JSON keys of the scenarios.
fn pairs(json: &Value) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    for key in ["cold_start", "refresh", "policy", "login", "revoke"] {
        let list = json[key].as_array().cloned().unwrap_or_default();
        assert!(!list.is_empty(), "{key} missing: {json}");
        out.extend(list.into_iter().map(|p| (key, p)));
    }
    out
}

/// The figures of one side of a pair; fails the test if that side has none.
fn figures<'a>(key: &str, pair: &'a Value, side: &str) -> &'a Value {
    let f = &pair[side]["figures"];
    assert!(f.is_object(), "{key}: {side} has no figures: {pair}");
    f
}

#[test]
fn sessiond_against_itself_reports_both_columns_and_ratios_without_errors() {
    // Quoted as a shell would need it: the command line is split into words.
    let command = format!("'{}'", debug_sessiond().display());
    let (run, stdout, json) = run_vs(&command);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "bench failed: {}\n{stderr}\n{stdout}", run.status);

    assert!(stdout.contains("<!-- sessiond-bench-vs:begin -->"), "{stdout}");
    assert!(stdout.contains("<!-- sessiond-bench-vs:end -->"), "{stdout}");
    for title in ["**Refresh**", "**Policy**", "**Login**", "**Bulk revoke**", "**Cold start**"] {
        assert!(stdout.contains(title), "{title} missing:\n{stdout}");
    }
    assert!(stdout.contains("| sessiond req/s | other req/s | ratio |"), "{stdout}");
    // No cell says "failed" and no note under a table says what went wrong.
    assert!(!stdout.contains("| failed |"), "{stdout}");
    assert!(!stdout.lines().any(|l| l.starts_with("- ")), "{stdout}");

    assert_eq!(json["errors"]["sessiond"], 0, "{}", json["errors"]);
    assert_eq!(json["errors"]["other"], 0, "{}", json["errors"]);
    assert_eq!(json["other"], debug_sessiond().display().to_string());
    for (key, pair) in pairs(&json) {
        for side in ["sessiond", "other"] {
            let f = figures(key, &pair, side);
            assert_eq!(f["errors"], 0, "{key}: {pair}");
            // Something was measured: requests, revokes or starts.
            let count = ["requests", "revokes", "starts"].iter().find_map(|k| f[k].as_u64());
            assert!(count > Some(0), "{key}: {side} measured nothing: {pair}");
        }
        let ratios = pair["ratios"].as_object().cloned().unwrap_or_default();
        let wanted: &[&str] = match key {
            "cold_start" => &["first_200_median_ms", "listening_median_ms"],
            "revoke" => &["median_ms"],
            _ => &["per_second", "p99_ms"],
        };
        for name in wanted {
            let r = ratios.get(*name).and_then(Value::as_f64);
            assert!(r.is_some_and(|r| r.is_finite() && r > 0.0), "{key}: ratio {name}: {pair}");
        }
    }
    // The Markdown table shows those ratios: in each refresh row, req/s, their ratio.
    let refresh_16 = &json["refresh"][1];
    let ratio = refresh_16["ratios"]["per_second"].as_f64().unwrap();
    let row = format!(
        "| 16 | {:.0} | {:.0} | {ratio:.2} |",
        figures("refresh", refresh_16, "sessiond")["per_second"].as_f64().unwrap(),
        figures("refresh", refresh_16, "other")["per_second"].as_f64().unwrap()
    );
    assert!(stdout.contains(&row), "{row} missing:\n{stdout}");
}

#[test]
fn answers_against_the_contract_count_as_the_other_servers_errors() {
    // The same binary, but idle_minutes above 100 is out of bounds: most of the policy
    // writes (15 to 1 454 minutes) get 422 instead of 200. Everything else is as usual.
    let command = format!(
        "env SESSIOND_SESSION_IDLE_MINUTES_DEFAULT=60 SESSIOND_SESSION_IDLE_MINUTES_MAX=100 '{}'",
        debug_sessiond().display()
    );
    let (run, stdout, json) = run_vs(&command);
    let stderr = String::from_utf8_lossy(&run.stderr);
    // Errors make the exit status 1 (not 2: the run itself went through).
    assert_eq!(run.status.code(), Some(1), "{stderr}\n{stdout}");
    assert!(stdout.contains("<!-- sessiond-bench-vs:end -->"), "{stdout}");

    let patch = &json["policy"][1];
    assert_eq!(figures("policy", patch, "sessiond")["errors"], 0, "{patch}");
    let wrong = figures("policy", patch, "other")["errors"].as_u64().unwrap();
    assert!(wrong > 0, "{patch}");
    assert_eq!(json["errors"]["sessiond"], 0, "{}", json["errors"]);
    assert_eq!(json["errors"]["other"], wrong, "only the policy writes: {}", json["errors"]);
    // Every other scenario still ran on both sides.
    for (key, pair) in pairs(&json) {
        for side in ["sessiond", "other"] {
            figures(key, &pair, side);
        }
    }
    assert!(stdout.contains("- other, policy PATCH, 16 clients: "), "{stdout}");
    assert!(stdout.contains("422"), "{stdout}");
}
