//! Connection bounds over real loopback sockets: header read and keep-alive timeouts, the
//! connection cap, an immediate 413 for an oversized `Content-Length`, and a shutdown that
//! stalled clients cannot hold up. The timeouts are tiny so the tests are fast; every
//! "eventually" has a generous upper bound that only a missing bound would reach.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Longer than any bound under test: reaching it means the bound is missing.
const NEVER: Duration = Duration::from_secs(20);

/// A daemon with the given `[server]` connection settings (milliseconds) and a 30 s
/// request timeout, so a 408 cannot pass for a bound under test.
async fn app_with(header_ms: u64, keep_alive_ms: u64, max_connections: usize) -> TestApp {
    spawn_app_with(TestOptions {
        tune: Some(Box::new(move |settings| {
            settings.server.header_read_timeout_ms = header_ms;
            settings.server.keep_alive_timeout_ms = keep_alive_ms;
            settings.server.max_connections = max_connections;
            settings.server.request_timeout_seconds = 30;
            settings.worker.shutdown_grace_seconds = 1;
        })),
        ..Default::default()
    })
    .await
}

/// Reads until the server closes the connection (or resets it); returns what it sent.
/// Fails when the connection is still open after [`NEVER`].
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    loop {
        let left = NEVER.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "the connection was still open after {NEVER:?}; received {:?}",
                String::from_utf8_lossy(&received)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&received).into_owned(),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads until a complete response head arrived; fails after [`NEVER`].
async fn read_head(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = NEVER.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => received.extend_from_slice(&buf[..n]),
            other => panic!(
                "no response head ({other:?}); received {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("the daemon accepts")
}

#[tokio::test]
async fn a_connection_that_sends_no_headers_or_half_of_them_is_closed() {
    let app = app_with(200, 5_000, 256).await;
    let mut silent = connect(app.addr).await;
    let mut slow = connect(app.addr).await;
    slow.write_all(b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut silent).await;
    assert!(!answer.contains("200"), "{answer}");
    read_until_closed(&mut slow).await;
    app.stop().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout() {
    // The header timeout is far beyond NEVER: only the keep-alive timeout can close it.
    let app = app_with(60_000, 200, 256).await;
    let mut stream = connect(app.addr).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    read_until_closed(&mut stream).await;
    app.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_and_healthz_recovers_once_the_stalled_ones_are_cut() {
    let app = app_with(2_000, 5_000, 4).await;
    let mut stalled = Vec::new();
    for _ in 0..4 {
        stalled.push(connect(app.addr).await);
    }
    // The fifth is accepted by the kernel and closed by orgsync without an answer.
    let mut over = connect(app.addr).await;
    let _ = over
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let answer = read_until_closed(&mut over).await;
    assert_eq!(answer, "", "a connection over the cap is not served");
    // The header timeout cuts the stalled four; then probes are answered again.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let response = wait_for_ok(NEVER, "/healthz answered again", async || {
        http.get(app.url("/healthz")).send().await
    })
    .await;
    assert_eq!(response.status(), 200);
    for mut stream in stalled {
        read_until_closed(&mut stream).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn an_oversized_content_length_is_answered_413_before_any_body_is_read() {
    let app = app_with(10_000, 5_000, 256).await;
    let mut stream = connect(app.addr).await;
    stream
        .write_all(
            b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 2000000\r\n\r\n",
        )
        .await
        .unwrap();
    // No body is ever sent: only the declared length can produce this answer (the
    // request timeout is 30 s, beyond NEVER).
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    app.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_with_stalled_and_idle_connections_open() {
    // Long timeouts: nothing but the shutdown itself may close these connections.
    let app = app_with(60_000, 60_000, 256).await;
    let mut idle = connect(app.addr).await;
    let mut mid_body = connect(app.addr).await;
    mid_body
        .write_all(
            b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"id\"",
        )
        .await
        .unwrap();
    let mut kept_alive = connect(app.addr).await;
    kept_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_head(&mut kept_alive).await;
    // Let the server reach the body read of the stalled request before stopping.
    let http = reqwest::Client::new();
    let probe = http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(probe.status(), 200);
    let addr = app.addr;
    app.stop_within(NEVER).await;
    for stream in [&mut idle, &mut mid_body, &mut kept_alive] {
        read_until_closed(stream).await;
    }
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}
