//! The browser console's HTML handlers over loopback HTTP, without a browser: off without a
//! token, the login flow and its cookie, CSRF refusals, and each page on real data.

use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::{Response, StatusCode};
use scalekit_standin::{Fault, StandIn};

use crate::helpers::*;

/// The admin token the console tests configure.
pub const TOKEN: &str = "console-test-token-0123456789abcdef";
/// A Stripe event that sets `plan_type` on the fixtures' organization.
pub const SUBSCRIPTION: &str = "stripe/event.customer.subscription.updated.json";

/// A daemon with the admin token and a stand-in holding the fixtures' organization.
pub async fn console_app(run_workers: bool) -> TestApp {
    console_app_on(run_workers, None).await
}

/// [`console_app`] on this database URL (else a temporary SQLite file).
async fn console_app_on(run_workers: bool, database_url: Option<&str>) -> TestApp {
    let standin = StandIn::start().await.unwrap();
    standin.create_organization("Acme Corp", Some(ORG), &[]);
    let mut env = vec![("ORGSYNC_ADMIN_TOKEN", TOKEN.into())];
    if let Some(url) = database_url {
        env.push(("ORGSYNC_DATABASE_URL", url.to_owned()));
    }
    spawn_app_with(TestOptions {
        standin: Some(standin),
        run_workers,
        env,
        ..Default::default()
    })
    .await
}

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A logged-in browser, as far as HTTP goes: the cookie and the form token.
struct Browser {
    http: reqwest::Client,
    origin: String,
    cookie: String,
    csrf: String,
}

/// The value of the first `name="csrf"` hidden field.
fn csrf_of(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
    html[start..start + 64].to_owned()
}

async fn login(app: &TestApp) -> Browser {
    let http = client();
    let origin = format!("http://{}", app.addr);
    let response = http
        .post(app.url("/admin/ui/login"))
        .header(ORIGIN, &origin)
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let set = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let cookie = set.split(';').next().unwrap().to_owned();
    let mut browser = Browser {
        http,
        origin,
        cookie,
        csrf: String::new(),
    };
    let (_, html) = browser.get(app, "/admin/ui/").await;
    browser.csrf = csrf_of(&html);
    browser
}

impl Browser {
    async fn get(&self, app: &TestApp, path: &str) -> (StatusCode, String) {
        let response = self
            .http
            .get(app.url(path))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    async fn post(&self, app: &TestApp, path: &str, form: &[(&str, &str)]) -> Response {
        let mut fields = vec![("csrf", self.csrf.as_str())];
        fields.extend_from_slice(form);
        self.http
            .post(app.url(path))
            .header(COOKIE, &self.cookie)
            .header(ORIGIN, &self.origin)
            .form(&fields)
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn without_the_token_the_console_does_not_exist() {
    let app = spawn_app().await;
    for path in ["/admin/ui/", "/admin/ui/login", "/admin/ui/jobs"] {
        let response = client().get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let response = client()
        .post(app.url("/admin/ui/login"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn the_login_form_trades_the_token_for_a_strict_httponly_cookie() {
    let app = console_app(false).await;
    let http = client();
    let response = http.get(app.url("/admin/ui/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/admin/ui/login");
    let html = http.get(app.url("/admin/ui/login")).send().await.unwrap();
    let html = html.text().await.unwrap();
    assert!(html.contains(r#"<label for="token">"#) && html.contains(r#"type="password""#));

    let wrong = post_login(&http, &app, "guess", None).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    assert!(wrong.text().await.unwrap().contains("not the admin token"));

    let right = post_login(&http, &app, TOKEN, None).await;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(right.headers()[LOCATION], "/admin/ui/");
    let set = right.headers()[SET_COOKIE].to_str().unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin/ui", "Max-Age="] {
        assert!(set.contains(attribute), "{attribute} missing: {set}");
    }
    assert!(!set.contains("Secure") && !set.contains(TOKEN), "{set}");
    let behind_tls = post_login(&http, &app, TOKEN, Some("https")).await;
    let set = behind_tls.headers()[SET_COOKIE].to_str().unwrap();
    assert!(set.ends_with("; Secure"), "{set}");
    app.stop().await;
}

/// Posts the login form, optionally as forwarded by a proxy with this protocol.
async fn post_login(
    http: &reqwest::Client,
    app: &TestApp,
    token: &str,
    forwarded_proto: Option<&str>,
) -> Response {
    let mut request = http.post(app.url("/admin/ui/login"));
    if let Some(proto) = forwarded_proto {
        request = request.header("x-forwarded-proto", proto);
    }
    request.form(&[("token", token)]).send().await.unwrap()
}

#[tokio::test]
async fn a_forged_cookie_is_sent_to_the_login_form_and_logout_ends_the_session() {
    let app = console_app(false).await;
    let browser = login(&app).await;
    let (status, html) = browser.get(&app, "/admin/ui/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>Overview</h1>"));
    let forged = Browser {
        cookie: "orgsync_session=00".into(),
        ..login(&app).await
    };
    assert_eq!(
        forged.get(&app, "/admin/ui/").await.0,
        StatusCode::SEE_OTHER
    );

    let out = browser.post(&app, "/admin/ui/logout", &[]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let cleared = out.headers()[SET_COOKIE].to_str().unwrap();
    assert!(cleared.contains("orgsync_session=;") && cleared.contains("Max-Age=0"));
    assert_eq!(
        browser.get(&app, "/admin/ui/").await.0,
        StatusCode::SEE_OTHER
    );
    app.stop().await;
}

#[tokio::test]
async fn posts_from_another_origin_or_without_the_form_token_are_refused() {
    let app = console_app(false).await;
    app.standin.fail_next(1, Fault::Status(403));
    app.post_stripe(&fixture(SUBSCRIPTION)).await;
    app.drain().await;
    let browser = login(&app).await;

    let cross = browser
        .http
        .post(app.url("/admin/ui/jobs/retry-dead"))
        .header(COOKIE, &browser.cookie)
        .header(ORIGIN, "http://evil.example")
        .form(&[("csrf", browser.csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    assert!(
        cross
            .text()
            .await
            .unwrap()
            .contains("cross-site request refused")
    );
    let tokenless = browser
        .http
        .post(app.url("/admin/ui/jobs/retry-dead"))
        .header(COOKIE, &browser.cookie)
        .form(&[("csrf", "0".repeat(64).as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(tokenless.status(), StatusCode::FORBIDDEN);
    let login_from_elsewhere = client()
        .post(app.url("/admin/ui/login"))
        .header(ORIGIN, "null")
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(login_from_elsewhere.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.jobs(Some(orgsync::store::JobState::Dead)).await.len(),
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn each_page_shows_the_stored_state_and_a_dead_job_is_retried_after_confirming() {
    pages(console_app(false).await).await;
}

#[tokio::test]
async fn each_page_works_on_postgres() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    pages(console_app_on(false, Some(db.url())).await).await;
}

/// Drives every page over a daemon that has the admin token and no events yet.
async fn pages(app: TestApp) {
    app.standin.fail_next(1, Fault::Status(403));
    app.post_stripe(&fixture(SUBSCRIPTION)).await;
    app.drain().await;
    let b = login(&app).await;
    overview_and_events(&app, &b).await;
    jobs_retried_after_confirming(&app, &b).await;
    target_and_replay(&app, &b).await;
    app.stop().await;
}

/// The overview counts the dead job; the events list filters; one event shows it all.
async fn overview_and_events(app: &TestApp, b: &Browser) {
    let (_, html) = b.get(app, "/admin/ui/").await;
    assert!(html.contains(r#"id="dead-count">1<"#), "{html}");
    assert!(html.contains(r#"id="workers-state">running<"#));
    assert!(
        html.contains(">stripe</a></th><td class=\"num\">1<"),
        "{html}"
    );
    assert!(
        html.contains("<svg class=\"chart\"") && html.contains("1 events received"),
        "{html}"
    );

    let (_, html) = b
        .get(app, "/admin/ui/events?source=stripe&status=accepted")
        .await;
    assert!(html.contains("customer.subscription.updated"), "{html}");
    let (status, html) = b.get(app, "/admin/ui/events?status=lost").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("accepted, ignored or rejected"));
    let (_, html) = b.get(app, "/admin/ui/events?since=2000-01-01T00:00").await;
    assert!(html.contains("customer.subscription.updated"));
    let (_, html) = b.get(app, "/admin/ui/events?until=2000-01-01T00:00").await;
    assert!(html.contains("No event matches."));
    let (_, html) = b.get(app, "/admin/ui/events/1").await;
    assert!(
        html.contains(r#"id="payload""#) && html.contains("customer.subscription.updated"),
        "{html}"
    );
    assert!(html.contains(r#"id="raw-body""#) && html.contains(r#"id="verification""#));
    assert!(html.contains("plan_type") && html.contains("state-dead"));
    assert_eq!(
        b.get(app, "/admin/ui/events/99").await.0,
        StatusCode::NOT_FOUND
    );
}

/// The dead job is listed with its error and retried in bulk after the confirmation step.
async fn jobs_retried_after_confirming(app: &TestApp, b: &Browser) {
    let (_, html) = b.get(app, "/admin/ui/jobs?state=dead").await;
    assert!(
        html.contains("403") && html.contains("Retry all 1 dead jobs"),
        "{html}"
    );
    let confirm = b
        .post(app, "/admin/ui/jobs/retry-dead", &[("state", "dead")])
        .await;
    assert_eq!(confirm.status(), StatusCode::OK);
    assert!(
        confirm
            .text()
            .await
            .unwrap()
            .contains("This runs <strong>1</strong> dead job again")
    );
    assert_eq!(
        app.jobs(Some(orgsync::store::JobState::Dead)).await.len(),
        1
    );
    let done = b
        .post(app, "/admin/ui/jobs/retry-dead", &[("confirm", "yes")])
        .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let (_, html) = b.get(app, done.headers()[LOCATION].to_str().unwrap()).await;
    assert!(html.contains("1 dead jobs will run again now"), "{html}");
    app.drain().await;
    let (_, html) = b.get(app, "/admin/ui/").await;
    assert!(html.contains("jobs applied: 1 (peak 1/min)"), "{html}");
    assert!(html.contains(r#"id="dead-count">0<"#));
    let again = b.post(app, "/admin/ui/jobs/1/retry", &[]).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
}

/// The target shows the value orgsync wrote; a replay dry-runs, then runs.
async fn target_and_replay(app: &TestApp, b: &Browser) {
    let (_, html) = b
        .get(
            app,
            &format!("/admin/ui/target?kind=organization&external_id={ORG}"),
        )
        .await;
    assert!(html.contains(&format!("org:{ORG}")), "{html}");
    assert!(
        html.contains("<code>plan_type</code></th><td>pro_monthly</td>"),
        "{html}"
    );
    assert!(html.contains(r#"id="check-drift""#) && !html.contains(r#"id="diff-unavailable""#));
    let drift = format!("/admin/ui/target?kind=organization&external_id={ORG}&drift=1");
    let (_, html) = b.get(app, &drift).await;
    assert!(html.contains(r#"id="diff-empty""#), "{html}");
    let org = app.standin.organization_by_external_id(ORG).unwrap().id;
    assert!(
        app.standin
            .edit_organization_metadata(&org, &[("plan_type", Some("enterprise"))])
    );
    let (_, html) = b.get(app, &drift).await;
    assert!(
        html.contains("<code>plan_type</code></th><td>enterprise</td>")
            && html.contains("changed since orgsync wrote it"),
        "{html}"
    );

    let (_, html) = b.get(app, "/admin/ui/replay").await;
    assert!(html.contains(r#"<label for="r-source">"#));
    let dry = b
        .post(
            app,
            "/admin/ui/replay",
            &[("source", "stripe"), ("action", "dry_run")],
        )
        .await;
    let html = dry.text().await.unwrap();
    assert!(html.contains("Dry run: nothing was enqueued"), "{html}");
    assert!(html.contains("1 events selected: 1 matched") && html.contains("pro_monthly"));
    let diff = &html[html.find(r#"id="diff""#).expect("a diff section")..];
    assert!(
        diff.contains("<td>enterprise</td>") && diff.contains("would write"),
        "the dry run shows the diff against live Scalekit: {diff}"
    );
    let jobs_before = app.jobs(None).await.len();
    let run = b
        .post(
            app,
            "/admin/ui/replay",
            &[("source", "stripe"), ("action", "run")],
        )
        .await;
    assert!(run.text().await.unwrap().contains("jobs were enqueued"));
    assert!(app.jobs(None).await.len() > jobs_before);
    let bad = b.post(app, "/admin/ui/replay", &[("ids", "1,x")]).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_overview_says_why_the_workers_are_paused() {
    let app = spawn_app_with(TestOptions {
        scalekit: false,
        env: vec![("ORGSYNC_ADMIN_TOKEN", TOKEN.into())],
        ..Default::default()
    })
    .await;
    app.post_stripe(&fixture(SUBSCRIPTION)).await;
    let b = login(&app).await;
    let (_, html) = b.get(&app, "/admin/ui/").await;
    assert!(html.contains(r#"id="workers-state">paused<"#), "{html}");
    assert!(html.contains("SCALEKIT_"), "{html}");
    assert!(html.contains(r#"id="queue-lag">"#) && !html.contains(r#"id="queue-lag">none<"#));
    app.stop().await;
}
