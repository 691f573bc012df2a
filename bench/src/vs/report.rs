//! The Markdown block of a `--vs` run: one table per scenario with sessiond's figure,
//! the other's, and the ratio sessiond / other; then what went wrong, per server.

use std::fmt::Write as _;

use super::{Measured, Outcome, Pair, SIDES, VsResults};
use crate::load::Summary;

pub const BEGIN: &str = "<!-- sessiond-bench-vs:begin -->";
pub const END: &str = "<!-- sessiond-bench-vs:end -->";

impl VsResults {
    /// The block for docs/PERFORMANCE.md, markers included.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        self.write_markdown(&mut md).unwrap_or_default();
        md
    }

    fn write_markdown(&self, md: &mut String) -> std::fmt::Result {
        let m = &self.machine;
        writeln!(md, "{BEGIN}")?;
        writeln!(
            md,
            "Side by side (`--vs`), run of {} at commit `{}`{}: {} CPUs ({}), {}. 1-minute \
             load average {:.2} before the run, {:.2} after; fdatasync of 4 KiB on the \
             scratch disk p50/p99 {:.2}/{:.2} ms before, {:.2}/{:.2} ms after. \
             **sessiond**: `{}`; **other**: `{}`. Both run alike: `CMD --database FILE serve \
             --listen 127.0.0.1:0` in an empty directory, default configuration, prepared \
             through the CLI and logins only. **Ratio = sessiond / other**: above 1 in \
             req/s, below 1 in ms, is sessiond ahead.\n",
            self.started_at,
            m.commit.as_deref().unwrap_or("unknown"),
            if self.quick { ", **quick mode (tiny sizes: not figures to quote)**" } else { "" },
            m.cpus,
            m.cpu_model,
            m.kernel,
            m.load_before,
            m.load_after,
            m.fsync_before.p50_ms,
            m.fsync_before.p99_ms,
            m.fsync_after.p50_ms,
            m.fsync_after.p99_ms,
            self.sessiond,
            self.other,
        )?;
        writeln!(md, "| errors, every scenario | sessiond | other |\n| --- | ---: | ---: |")?;
        writeln!(
            md,
            "| requests answered against the contract, failed starts or steps | {} | {} |\n",
            self.errors.get(SIDES[0]).copied().unwrap_or_default(),
            self.errors.get(SIDES[1]).copied().unwrap_or_default()
        )?;

        writeln!(
            md,
            "**Refresh** (`POST /auth/refresh`, each request a new token; sessions made by \
             logins)\n"
        )?;
        loads(md, "clients", &|n| format!("refresh at {n} clients"), &self.refresh)?;
        writeln!(md, "**Policy** (`/accounts/me/security`, one owner)\n")?;
        loads(md, "load", &|n| format!("policy {n}"), &self.policy)?;
        writeln!(md, "**Login** (`POST /auth/login`, argon2 bound)\n")?;
        loads(md, "clients", &|n| format!("login at {n} clients"), &self.login)?;
        self.md_revoke(md)?;
        self.md_cold_start(md)?;
        self.md_setup(md)?;
        writeln!(md, "{END}")
    }

    fn md_revoke(&self, md: &mut String) -> std::fmt::Result {
        writeln!(
            md,
            "**Bulk revoke** (`POST /accounts/me/security/revoke-sessions`, scope `others`, \
             of sessions just made by logins; as seen by the client)\n"
        )?;
        writeln!(
            md,
            "| sessions revoked | revokes | sessiond median ms | other median ms | ratio | \
             sessiond min–max ms | other min–max ms | errors sessiond / other |\n\
             | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        )?;
        for p in &self.revoke {
            let [a, b] = p.sides();
            let revokes = a.figures().or(b.figures()).map_or(0, |r| r.revokes);
            let range = |o: &Outcome<super::Revokes>| {
                cell(o, |r| format!("{:.1}–{:.1}", r.min_ms, r.max_ms))
            };
            writeln!(
                md,
                "| {} | {revokes} | {} | {} | {} | {} | {} | {} / {} |",
                p.load,
                cell(a, |r| format!("{:.1}", r.median_ms)),
                cell(b, |r| format!("{:.1}", r.median_ms)),
                ratio(p, "median_ms"),
                range(a),
                range(b),
                p.errors(0),
                p.errors(1)
            )?;
        }
        writeln!(md)?;
        notes(md, &|n| format!("revoke of {n} sessions"), &self.revoke)
    }

    fn md_cold_start(&self, md: &mut String) -> std::fmt::Result {
        writeln!(md, "**Cold start** (from `exec`; median of the starts)\n")?;
        writeln!(
            md,
            "| database | starts each | sessiond → first 200 ms | other → first 200 ms | ratio \
             | sessiond → `listening` ms | other → `listening` ms | ratio | errors sessiond / \
             other |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        )?;
        for p in &self.cold_start {
            let [a, b] = p.sides();
            let starts = a.figures().map_or(0, |c| c.starts);
            // A side none of whose starts answered has no median to show.
            let cell = |o: &Outcome<super::ColdStart>, f: fn(&super::ColdStart) -> f64| {
                cell(o, |c| match c.errors < c.starts as u64 {
                    true => format!("{:.1}", f(c)),
                    false => "–".to_owned(),
                })
            };
            writeln!(
                md,
                "| {} | {starts} | {} | {} | {} | {} | {} | {} | {} / {} |",
                p.load,
                cell(a, |c| c.first_200_median_ms),
                cell(b, |c| c.first_200_median_ms),
                ratio(p, "first_200_median_ms"),
                cell(a, |c| c.listening_median_ms),
                cell(b, |c| c.listening_median_ms),
                ratio(p, "listening_median_ms"),
                p.errors(0),
                p.errors(1)
            )?;
        }
        writeln!(md)?;
        notes(md, &|n| format!("cold start on {n}"), &self.cold_start)
    }

    fn md_setup(&self, md: &mut String) -> std::fmt::Result {
        let p = &self.setup;
        let [a, b] = p.sides();
        let what = a.figures().or(b.figures()).map_or_else(String::new, |s| {
            format!("{} users by `user create`, {} sessions by logins", s.users, s.sessions)
        });
        writeln!(
            md,
            "**Setup** (start, {what}), not a scenario: sessiond {}, other {}, ratio {}.\n",
            cell(a, |s| format!("{:.1} s", s.seconds)),
            cell(b, |s| format!("{:.1} s", s.seconds)),
            ratio(p, "seconds")
        )?;
        notes(md, &|n| n.to_owned(), std::slice::from_ref(p))
    }
}

/// The table of load runs: req/s and p99 of each side with their ratios.
/// `first` is the first column's header and `name` what the notes call a row.
fn loads(
    md: &mut String,
    first: &str,
    name: &dyn Fn(&str) -> String,
    pairs: &[Pair<Summary>],
) -> std::fmt::Result {
    writeln!(
        md,
        "| {first} | sessiond req/s | other req/s | ratio | sessiond p99 ms | other p99 ms | \
         ratio | sessiond p50 ms | other p50 ms | errors sessiond / other |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )?;
    for p in pairs {
        let [a, b] = p.sides();
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} |",
            p.load,
            cell(a, |s| format!("{:.0}", s.per_second)),
            cell(b, |s| format!("{:.0}", s.per_second)),
            ratio(p, "per_second"),
            cell(a, |s| format!("{:.2}", s.p99_ms)),
            cell(b, |s| format!("{:.2}", s.p99_ms)),
            ratio(p, "p99_ms"),
            cell(a, |s| format!("{:.2}", s.p50_ms)),
            cell(b, |s| format!("{:.2}", s.p50_ms)),
            p.errors(0),
            p.errors(1)
        )?;
    }
    writeln!(md)?;
    notes(md, name, pairs)
}

/// A side's figure, or what stands in for it.
fn cell<T>(o: &Outcome<T>, f: impl Fn(&T) -> String) -> String {
    match o {
        Outcome::Figures(x) => f(x),
        Outcome::Failed(_) => "failed".to_owned(),
        Outcome::Skipped => "–".to_owned(),
    }
}

fn ratio<T>(p: &Pair<T>, metric: &str) -> String {
    p.ratios.get(metric).map_or_else(|| "–".to_owned(), |r| format!("{r:.2}"))
}

/// Under a table: for each side that failed or counted errors, what went wrong.
/// `name` says which scenario a row is, from its label.
fn notes<T: Measured>(
    md: &mut String,
    name: &dyn Fn(&str) -> String,
    pairs: &[Pair<T>],
) -> std::fmt::Result {
    let mut any = false;
    for p in pairs {
        for (i, side) in p.sides().into_iter().enumerate() {
            let what = match side {
                Outcome::Failed(why) => format!("failed: {why}"),
                Outcome::Figures(f) if f.errors() > 0 => format!(
                    "{} errors, e.g. {}",
                    f.errors(),
                    f.error_samples().first().map_or("–", String::as_str)
                ),
                _ => continue,
            };
            let what = what.replace('\n', " ").replace('|', "\\|");
            writeln!(md, "- {}, {}: {what}", SIDES[i], name(&p.load))?;
            any = true;
        }
    }
    if any {
        writeln!(md)?;
    }
    Ok(())
}
