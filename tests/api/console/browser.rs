//! A real headless Chromium, driven over WebDriver (fantoccini → chromedriver), for the
//! owner console's browser tests. Each test starts its own chromedriver on a free port and
//! its own browser session with a fresh profile, and stops both when done (also when the
//! test fails: the driver's whole process group is killed on drop).
//!
//! Where no browser is installed the tests say so and pass without running — except under
//! `CI=true` or `SESSIOND_BROWSER_TESTS=1`, where a missing browser fails them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tempfile::TempDir;

/// Where the browser and its driver are: `SESSIOND_CHROMIUM` / `SESSIOND_CHROMEDRIVER`,
/// else Debian's paths, else the first of the usual names on `PATH`.
fn find(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for c in candidates {
        if c.starts_with('/') {
            if Path::new(c).is_file() {
                return Some(PathBuf::from(c));
            }
            continue;
        }
        for dir in std::env::split_paths(&path) {
            let p = dir.join(c);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("SESSIOND_BROWSER_TESTS").is_ok_and(|v| v == "1")
}

/// The screenshots of the pages, for review: `target/console-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A chromedriver process (and, through it, the browsers of its sessions).
pub struct Driver {
    child: Child,
    url: String,
    chromium: PathBuf,
}

impl Driver {
    /// `None` (after saying why) when no browser is installed and none is required.
    pub async fn start() -> Option<Driver> {
        let chromium = find(
            "SESSIOND_CHROMIUM",
            &["/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"],
        );
        let driver = find("SESSIOND_CHROMEDRIVER", &["/usr/bin/chromedriver", "chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            assert!(
                !required(),
                "browser tests are required here (CI=true or SESSIOND_BROWSER_TESTS=1) but \
                 chromium and chromedriver were not found: apt-get install chromium chromium-driver"
            );
            eprintln!(
                "SKIPPED: no chromium/chromedriver installed (apt-get install chromium \
                 chromium-driver); set SESSIOND_BROWSER_TESTS=1 to make this a failure"
            );
            return None;
        };
        let port = free_port();
        let mut command = Command::new(&driver);
        command
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group, so that the browsers it starts are stopped with it.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child =
            command.spawn().unwrap_or_else(|e| panic!("starting {}: {e}", driver.display()));
        let url = format!("http://127.0.0.1:{port}/");
        let d = Driver { child, url, chromium };
        d.wait_ready().await;
        Some(d)
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = client.get(format!("{}status", self.url)).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("chromedriver did not answer on {}", self.url);
    }

    /// A new browser (its own fresh profile: no cookies shared with any other).
    pub async fn browser(&self) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-extensions".to_owned(),
            "--window-size=1280,900".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": self.chromium.to_string_lossy(), "args": args }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("starting a browser session: {e}"));
        Browser { client, _profile: profile }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group of the driver we started (its id is the group's): the driver and any
        // browser a failed test left open.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub struct Browser {
    pub client: Client,
    _profile: TempDir,
}

/// A Chrome DevTools command through chromedriver (`goog/cdp/execute`).
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/goog/cdp/execute", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({ "cmd": self.cmd, "params": self.params }).to_string()))
    }
}

impl Browser {
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        let found = self
            .client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(e) => e,
            Err(e) => panic!("no element {css} on {}: {e}", self.current().await),
        }
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self.client.find_all(Locator::Css(css)).await.unwrap().is_empty()
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let e = self.find(css).await;
        e.clear().await.unwrap();
        e.send_keys(value).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Clicks something that loads a new page (a link, a form's submit button) and waits
    /// until that page has replaced this one, so what is read next is the new page's.
    pub async fn click_to_load(&self, css: &str) {
        let page = self.find("html").await;
        self.click(css).await;
        for _ in 0..300 {
            // The old page's root element goes stale once the next page has loaded.
            if page.tag_name().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clicking {css} loaded no new page: still on {}", self.current().await);
    }

    /// What is showing, for failure messages.
    pub async fn current(&self) -> String {
        let url = self.client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        let text = self.client.find(Locator::Css("body")).await;
        let text = match text {
            Ok(b) => b.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        format!("{url}\n{text}")
    }

    /// Signs in through the form.
    /// Signs in through the form and waits until the answer's page has replaced the form:
    /// a next navigation started earlier would abort the request in flight, and the
    /// server would never finish (nor count) that attempt.
    pub async fn sign_in(&self, base: &str, email: &str, password: &str) {
        self.goto(&format!("{base}/console/sign-in")).await;
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click_to_load("form button[type=submit]").await;
    }

    /// Waits until the page's path is `path`.
    pub async fn wait_path(&self, path: &str) {
        // Generous: two shared cores may be busy with other builds.
        for _ in 0..300 {
            if self.path().await == path {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected to be on {path}, but on {}", self.current().await);
    }

    /// The element that has the keyboard focus.
    pub async fn focused_text(&self) -> String {
        self.client.active_element().await.unwrap().text().await.unwrap()
    }

    /// Presses keys as a keyboard would (WebDriver key actions), one after another.
    pub async fn press(&self, keys: &[fantoccini::key::Key]) {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let mut seq = KeyActions::new("keyboard".into());
        for k in keys {
            let c = char::from(*k);
            seq = seq.then(KeyAction::Down { value: c }).then(KeyAction::Up { value: c });
        }
        self.client.perform_actions(seq).await.unwrap();
        self.client.release_actions().await.unwrap();
    }

    /// Saves the page as `<name>-light.png` and `<name>-dark.png` under
    /// `target/console-screenshots/`, after checking that every control on it has a label.
    pub async fn screenshots(&self, name: &str) {
        let unlabelled = self
            .client
            .execute(
                "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                    .filter(e => !e.labels || e.labels.length === 0)
                    .map(e => e.name || e.id);",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(unlabelled, json!([]), "{name}: controls without a label");
        let dir = screenshot_dir();
        let mut backgrounds = Vec::new();
        for scheme in ["light", "dark"] {
            self.client
                .issue_cmd(Cdp {
                    cmd: "Emulation.setEmulatedMedia",
                    params: json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
                })
                .await
                .unwrap();
            backgrounds.push(self.background().await);
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(dir.join(format!("{name}-{scheme}.png")), png).unwrap();
        }
        assert_ne!(backgrounds[0], backgrounds[1], "{name}: the page follows prefers-color-scheme");
        self.client
            .issue_cmd(Cdp { cmd: "Emulation.setEmulatedMedia", params: json!({ "features": [] }) })
            .await
            .unwrap();
    }

    /// The page's background colour as computed now.
    async fn background(&self) -> String {
        let v = self
            .client
            .execute("return getComputedStyle(document.body).backgroundColor;", vec![])
            .await
            .unwrap();
        v.as_str().unwrap_or_default().to_owned()
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
