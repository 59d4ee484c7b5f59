//! Operator surfaces: the admin API and `/metrics` on their own listener (and absent from
//! the public one), and an admin token too short to stop startup.

use std::process::Command;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use reqwest::StatusCode;

use crate::helpers::*;

const TOKEN: &str = "admin-listener-token-0123456789abcdef";

async fn get(app: &TestApp, url: String) -> StatusCode {
    app.http
        .get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("the daemon answers")
        .status()
}

#[tokio::test]
async fn with_an_admin_listener_metrics_and_admin_move_there_and_leave_the_public_one() {
    let app = spawn_app_with(TestOptions {
        env: vec![
            ("ORGSYNC_ADMIN_TOKEN", TOKEN.into()),
            ("ORGSYNC_ADMIN_LISTEN", "127.0.0.1:0".into()),
        ],
        ..Default::default()
    })
    .await;
    assert_ne!(app.admin_addr, Some(app.addr));
    for path in [
        "/metrics",
        "/admin/jobs",
        "/admin/events",
        "/admin/jobs/counts",
    ] {
        assert_eq!(get(&app, app.url(path)).await, 404, "public {path}");
        assert_eq!(get(&app, app.admin_url(path)).await, 200, "admin {path}");
    }
    for path in ["/healthz", "/readyz"] {
        assert_eq!(get(&app, app.url(path)).await, 200, "public {path}");
        assert_eq!(get(&app, app.admin_url(path)).await, 200, "admin {path}");
    }
    // Webhooks are public only.
    let body = fixture("stripe/event.customer.created.json");
    assert_eq!(app.post_stripe(&body).await.status(), 200);
    let on_admin = app
        .http
        .post(app.admin_url("/webhooks/stripe"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(on_admin.status(), 404);
    // The admin API still wants its token there.
    let anonymous = app
        .http
        .get(app.admin_url("/admin/jobs"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn without_an_admin_listener_everything_stays_on_the_public_one() {
    let app = spawn_app_with(TestOptions {
        env: vec![("ORGSYNC_ADMIN_TOKEN", TOKEN.into())],
        ..Default::default()
    })
    .await;
    assert_eq!(app.admin_addr, None);
    for path in ["/metrics", "/admin/jobs", "/healthz"] {
        assert_eq!(get(&app, app.url(path)).await, 200, "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_full_public_listener_leaves_the_admin_listener_answering() {
    let app = spawn_app_with(TestOptions {
        env: vec![("ORGSYNC_ADMIN_LISTEN", "127.0.0.1:0".into())],
        tune: Some(Box::new(|settings| {
            settings.server.max_connections = 2;
            settings.server.header_read_timeout_ms = 60_000;
        })),
        ..Default::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(TcpStream::connect(app.addr).await.unwrap());
    }
    // A third public connection is closed unanswered…
    let mut over = TcpStream::connect(app.addr).await.unwrap();
    let _ = over
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), over.read_to_end(&mut answer));
    assert!(read.await.is_ok(), "the connection over the cap stays open");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    // …while the operator's listener answers, and counts the refusal.
    assert_eq!(get(&app, app.admin_url("/healthz")).await, 200);
    let metrics = app.metrics_text().await;
    for line in [
        r#"orgsync_http_connections_refused_total{listener="public"} 1"#,
        r#"orgsync_http_connections_open{listener="public"} 2"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
    drop(held);
    app.stop().await;
}

#[test]
fn a_short_admin_token_stops_startup_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_orgsync"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("serve")
        .env_clear()
        .env("ORGSYNC_LISTEN", "127.0.0.1:0")
        .env(
            "ORGSYNC_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("o.db").display()),
        )
        .env("ORGSYNC_ADMIN_TOKEN", "x")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("ORGSYNC_ADMIN_TOKEN") && stderr.contains("at least 32"),
        "{stderr}"
    );
}
