//! TLS to PostgreSQL: `sslmode=require` never falls back to cleartext, and `require` and
//! `verify-full` connect to a server that offers TLS.

use std::time::Duration;

use orgsync::store::Store;
use sqlx::{Connection, PgConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::TestDb;

/// The first message a TLS-asking PostgreSQL client sends: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// A server without TLS: answers `N` to the SSLRequest, then records whatever the client
/// sends next (a client falling back to cleartext would send its startup message, with
/// the user name, here).
async fn server_without_tls() -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 8];
        stream.read_exact(&mut request).await.unwrap();
        assert_eq!(request, SSL_REQUEST, "the client asks for TLS first");
        stream.write_all(b"N").await.unwrap();
        let mut after = Vec::new();
        let read = stream.read_to_end(&mut after);
        let _ = tokio::time::timeout(Duration::from_secs(20), read).await;
        after
    });
    (port, handle)
}

#[tokio::test]
async fn sslmode_require_against_a_server_without_tls_fails_clearly_and_sends_nothing_in_cleartext()
{
    let (port, server) = server_without_tls().await;
    let url = format!("postgres://orgsync_user:pw@127.0.0.1:{port}/orgsync?sslmode=require");
    let err = Store::connect(&url).await.unwrap_err().to_string();
    assert!(
        err.contains("TLS") && err.contains("sslmode") && err.contains("ssl = on"),
        "the error says what happened and what to do: {err}"
    );
    let after = server.await.unwrap();
    assert!(
        after.is_empty(),
        "the client fell back to cleartext and sent {:?}",
        String::from_utf8_lossy(&after)
    );
}

/// Whether the server behind `url` has TLS on (a server without it skips, with a note).
async fn server_offers_tls(url: &str) -> bool {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    if ssl != "on" {
        eprintln!("note: the test server has ssl = off; skipping the TLS connection test");
    }
    ssl == "on"
}

/// `url` with `params` added to its query.
fn with_params(url: &str, params: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{params}")
}

#[tokio::test]
async fn sslmode_require_connects_over_tls_when_the_server_offers_it() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    if !server_offers_tls(db.url()).await {
        return;
    }
    let url = with_params(db.url(), "sslmode=require");
    let store = Store::connect(&url).await.unwrap();
    store.ping().await.unwrap();
    store.close().await;
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(encrypted, "the session is encrypted");
    conn.close().await.unwrap();
}

#[tokio::test]
async fn sslmode_verify_full_checks_the_certificate() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    if !server_offers_tls(db.url()).await {
        return;
    }
    // The server's certificate is not signed by a public CA: refused without sslrootcert.
    let url = with_params(db.url(), "sslmode=verify-full");
    let err = Store::connect(&url).await.unwrap_err().to_string();
    assert!(err.contains("TLS") && err.contains("sslrootcert"), "{err}");
    // Trusting it (a self-signed certificate for `localhost` on this machine) connects.
    let mut conn = PgConnection::connect(db.url()).await.unwrap();
    let cert: String = sqlx::query_scalar("SHOW ssl_cert_file")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    if !names_localhost(&cert) || !db.url().contains("127.0.0.1") {
        eprintln!(
            "note: the server certificate {cert} is not readable here or not for localhost; skipping the verify-full connection"
        );
        return;
    }
    let url = with_params(
        &db.url().replacen("127.0.0.1", "localhost", 1),
        &format!("sslmode=verify-full&sslrootcert={cert}"),
    );
    let store = Store::connect(&url).await.unwrap();
    store.ping().await.unwrap();
    store.close().await;
}

/// Whether the PEM certificate at `path` is readable and names `localhost` (its DER holds
/// the name as plain ASCII).
fn names_localhost(path: &str) -> bool {
    use base64::Engine as _;
    let Ok(pem) = std::fs::read_to_string(path) else {
        return false;
    };
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .is_ok_and(|der| der.windows(9).any(|w| w == b"localhost"))
}
