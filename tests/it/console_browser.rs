//! The console in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) logs in, retries a dead job after the stand-in recovered and sees it
//! done, dry-runs a replay, is refused on a cross-site POST, and saves screenshots of every
//! page at 1280 and 390 px. Without Chromium the test skips with a note, unless
//! `ORGSYNC_REQUIRE_BROWSER=1` (CI) makes that a failure.

use std::path::PathBuf;
use std::time::Duration;

use axum::response::Html;
use orgsync::store::{JobRow, JobState};
use scalekit_standin::Fault;

use crate::console::{SUBSCRIPTION, TOKEN, console_app};
use crate::console_webdriver::{Browser, which};
use crate::helpers::*;

/// The viewport widths every page is captured at.
const WIDTHS: [u32; 2] = [1280, 390];

/// Where screenshots go: `ORGSYNC_SCREENSHOT_DIR`, else `target/console-screenshots`.
fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("ORGSYNC_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The browser, or `None` (skip) when Chromium is not installed and not required.
async fn browser() -> Option<Browser> {
    let driver = which(&["chromedriver"]);
    let chromium = which(&["chromium", "chromium-browser", "google-chrome"]);
    match (driver, chromium) {
        (Some(driver), Some(chromium)) => Some(Browser::start(&driver, &chromium).await),
        _ if std::env::var("ORGSYNC_REQUIRE_BROWSER").as_deref() == Ok("1") => panic!(
            "ORGSYNC_REQUIRE_BROWSER=1 but chromium or chromedriver is missing: \
             apt-get install -y chromium chromium-driver"
        ),
        _ => {
            say(
                "note: console browser test skipped: chromium/chromedriver not found \
                 (apt-get install -y chromium chromium-driver; ORGSYNC_REQUIRE_BROWSER=1 makes this fail)",
            );
            None
        }
    }
}

/// Writes a line to stderr past the test harness's capture, so it shows in every run.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Captures the current page at both widths as `NAME-WIDTH.png`.
async fn capture(browser: &Browser, name: &str) {
    let dir = screenshot_dir();
    for width in WIDTHS {
        browser.viewport(width).await;
        browser
            .screenshot(&dir.join(format!("{name}-{width}.png")))
            .await;
    }
    browser.viewport(1280).await;
}

/// A page on another port that posts a bulk retry to the console when its button is
/// clicked (a cross-site request forgery attempt).
async fn attacker_page(console: std::net::SocketAddr) -> std::net::SocketAddr {
    let html = format!(
        r#"<!doctype html><form method="post" action="http://{console}/admin/ui/jobs/retry-dead">
        <input type="hidden" name="csrf" value="guessed"><input type="hidden" name="confirm" value="yes">
        <button id="go" type="submit">Win a prize</button></form>"#
    );
    let app = axum::Router::new().route("/", axum::routing::get(move || async move { Html(html) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Waits until at least one job is dead; returns the newest.
async fn dead_job(app: &TestApp) -> JobRow {
    wait_for_ok(Duration::from_secs(30), "a dead job", async || {
        let dead = app.jobs(Some(JobState::Dead)).await.into_iter().next();
        dead.ok_or("none yet")
    })
    .await
}

#[tokio::test]
async fn the_console_works_in_headless_chromium() {
    let Some(browser) = browser().await else {
        return;
    };
    let app = console_app(true).await;
    app.standin.fail_next(1, Fault::Status(403));
    app.post_stripe(&fixture(SUBSCRIPTION)).await;
    let dead = dead_job(&app).await;

    log_in(&browser, &app).await;
    retry_until_done(&browser, &app, &dead).await;
    visit_pages(&browser, &app, dead.event_id.get()).await;
    dry_run(&browser, &app, dead.event_id.get()).await;
    forged_post_is_refused(&browser, &app).await;

    // Logging out ends the session.
    browser.goto(&app.url("/admin/ui/")).await;
    browser.find("header button").await.click().await;
    browser.wait_for_text(r#"id="token""#).await;
    browser.goto(&app.url("/admin/ui/jobs")).await;
    assert!(browser.url().await.ends_with("/admin/ui/login"));

    say(&format!(
        "console screenshots: {}",
        screenshot_dir().display()
    ));
    browser.quit().await;
    app.stop().await;
}

/// The console sends a stranger to the login form; the token leads to the overview.
async fn log_in(browser: &Browser, app: &TestApp) {
    browser.goto(&app.url("/admin/ui/")).await;
    assert!(browser.url().await.ends_with("/admin/ui/login"));
    capture(browser, "login").await;
    browser.find("#token").await.type_text(TOKEN).await;
    browser.find("button[type=submit]").await.click().await;
    browser.wait_for_text("<h1>Overview</h1>").await;
    assert_eq!(browser.find("#dead-count").await.text().await, "1");
    capture(browser, "overview").await;
}

/// The dead job, retried now that the stand-in no longer fails, ends done.
async fn retry_until_done(browser: &Browser, app: &TestApp, dead: &JobRow) {
    browser.goto(&app.url("/admin/ui/jobs?state=dead")).await;
    let row = format!("#job-{}", dead.id);
    assert_eq!(
        browser.find(&format!("{row} .state")).await.text().await,
        "dead"
    );
    capture(browser, "jobs").await;
    browser.find(&format!("{row} button")).await.click().await;
    browser.wait_for_text("will run again now").await;
    let target_jobs = app.url(&format!("/admin/ui/jobs?target=org:{ORG}"));
    wait_for(Duration::from_secs(30), "the job done", async || {
        browser.goto(&target_jobs).await;
        browser.find(&format!("{row} .state")).await.text().await == "done"
    })
    .await;
    let org = app.standin.organization_by_external_id(ORG).unwrap();
    assert_eq!(
        org.metadata.get("plan_type").map(String::as_str),
        Some("pro_monthly")
    );
}

/// Events, one event, the target: each shows its data.
async fn visit_pages(browser: &Browser, app: &TestApp, event_id: i64) {
    browser
        .goto(&app.url("/admin/ui/events?source=stripe"))
        .await;
    browser.wait_for_text("customer.subscription.updated").await;
    capture(browser, "events").await;
    browser
        .goto(&app.url(&format!("/admin/ui/events/{event_id}")))
        .await;
    assert!(browser.find("#verification").await.text().await.len() > 3);
    capture(browser, "event").await;
    let target = format!("/admin/ui/target?kind=organization&external_id={ORG}");
    browser.goto(&app.url(&target)).await;
    browser.wait_for_text("pro_monthly").await;
    capture(browser, "target").await;
}

/// A replay dry run shows what the rules make of the event and enqueues nothing.
async fn dry_run(browser: &Browser, app: &TestApp, event_id: i64) {
    let jobs_before = app.jobs(None).await.len();
    browser.goto(&app.url("/admin/ui/replay")).await;
    browser
        .find("#r-ids")
        .await
        .type_text(&event_id.to_string())
        .await;
    browser.find("#dry-run").await.click().await;
    browser.wait_for_text("Dry run: nothing was enqueued").await;
    let report = browser.find("#report").await.text().await;
    assert!(
        report.starts_with("1 events selected: 1 matched"),
        "{report}"
    );
    assert!(
        browser
            .find("#outcomes")
            .await
            .text()
            .await
            .contains("plan_type")
    );
    let diff = browser.find("#diff").await.text().await;
    assert!(
        diff.contains("plan_type") && diff.contains("unchanged"),
        "the diff against live Scalekit: {diff}"
    );
    assert_eq!(app.jobs(None).await.len(), jobs_before);
    capture(browser, "replay").await;
}

/// A form on another site posting a bulk retry to the console is refused.
async fn forged_post_is_refused(browser: &Browser, app: &TestApp) {
    app.standin.fail_next(1, Fault::Status(403));
    let quantity = fixture("stripe/event.customer.subscription.updated.quantity.json");
    app.post_stripe(&quantity).await;
    dead_job(app).await;
    let attacker = attacker_page(app.addr).await;
    browser.goto(&format!("http://{attacker}/")).await;
    browser.find("#go").await.click().await;
    browser.wait_for_text("cross-site request refused").await;
    assert_eq!(app.jobs(Some(JobState::Dead)).await.len(), 1);
}
