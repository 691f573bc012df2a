//! The bench runs end to end in its quick mode, against a debug build of the server:
//! every scenario reports, and no request failed (scenario 9 too, on PostgreSQL, when the
//! suite runs with `SESSIOND_TEST_DATABASE_URL`). No figure is checked against a target
//! here — timings on a shared machine are not test results.

use std::process::Command;

use serde_json::Value;

#[test]
fn quick_run_reports_every_scenario_without_errors() {
    let out = tempfile::tempdir().unwrap();
    // In the suite's PostgreSQL pass, scenario 9 runs too, on that server.
    let postgres =
        std::env::var("SESSIOND_TEST_DATABASE_URL").ok().filter(|u| !u.trim().is_empty());
    let mut bench = Command::new(env!("CARGO_BIN_EXE_sessiond-bench"));
    bench.args(["--quick", "--profile", "dev", "--out"]).arg(out.path());
    if let Some(url) = &postgres {
        bench.args(["--postgres", url]);
    }
    let run = bench.output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "bench failed: {}\n{stderr}\n{stdout}", run.status);

    // The Markdown block: between its markers, a section for each of the eight scenarios.
    assert!(stdout.contains("<!-- sessiond-bench:begin -->"), "{stdout}");
    assert!(stdout.contains("<!-- sessiond-bench:end -->"), "{stdout}");
    for n in 1..=8 {
        assert!(stdout.contains(&format!("**{n}. ")), "scenario {n} missing:\n{stdout}");
    }

    // The JSON file: every scenario present, every error count 0.
    let files: Vec<_> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let json: Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    let list = |key: &str| json[key].as_array().cloned().unwrap_or_default();
    // 1, 16 and 64 clients under FULL and NORMAL with group commit, and FULL without it
    // (the control of issue 11's targets).
    let refresh = list("refresh");
    assert_eq!(refresh.len(), 9, "1, 16 and 64 clients, full, full ungrouped and normal");
    let ungrouped: Vec<_> = refresh.iter().filter(|r| r["grouped"] == false).collect();
    assert_eq!(ungrouped.len(), 3, "{refresh:?}");
    assert!(ungrouped.iter().all(|r| r["synchronous"] == "full"), "{ungrouped:?}");
    assert_eq!(list("ceiling").len(), 2);
    assert!(list("revoke").iter().any(|r| r["foreign"].as_u64() > Some(0)));
    assert_eq!(list("cold_start").len(), 2);
    assert_eq!(list("memory").len(), 2);
    for key in ["refresh", "ceiling", "revoke", "cold_start"] {
        for row in list(key) {
            assert_eq!(row["errors"], 0, "{key}: {row}");
        }
    }
    for (key, parts) in [
        ("policy", &["get", "patch"][..]),
        ("login", &["logins", "refresh_alone", "refresh_during_storm", "storm_logins"][..]),
        ("login_memory", &["figures"][..]),
    ] {
        for part in parts {
            assert_eq!(json[key][part]["errors"], 0, "{key}.{part}: {}", json[key]);
            assert!(json[key][part]["requests"].as_u64() > Some(0), "{key}.{part}: {}", json[key]);
        }
    }
    if postgres.is_some() {
        assert!(stdout.contains("**9. PostgreSQL**"), "scenario 9 missing:\n{stdout}");
        let pg = &json["postgres"];
        let refresh = pg["refresh"].as_array().cloned().unwrap_or_default();
        let processes: Vec<_> = refresh.iter().map(|r| r["processes"].clone()).collect();
        assert_eq!(processes, [1, 3], "{pg}");
        for row in refresh.iter().chain(pg["revoke"].as_array().into_iter().flatten()) {
            assert_eq!(row["errors"], 0, "{row}");
            assert!(row["requests"].as_u64().or(row["revokes"].as_u64()) > Some(0), "{row}");
        }
    } else {
        assert!(json["postgres"].is_null(), "scenario 9 runs only with --postgres");
    }
    assert_eq!(json["errors"], 0);
    assert!(!list("targets").is_empty());
}
