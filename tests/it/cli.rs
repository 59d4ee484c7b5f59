//! The `orgsync` binary itself: explain, check-config, jobs, send, serve.

use std::path::Path;
use std::process::{Command, Output};

use orgsync::store::JobState;
use scalekit_standin::Fault;

use crate::helpers::*;

/// Runs the binary with the default config and `env`.
fn orgsync(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orgsync"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .env_clear();
    command.env("ORGSYNC_DATABASE_URL", "sqlite::memory:");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn explain_works_for_every_stripe_fixture() {
    for name in stripe_fixtures() {
        let path = Path::new("tests/fixtures/stripe").join(&name);
        let output = orgsync(
            &["explain", "--source", "stripe", path.to_str().unwrap()],
            &[],
        );
        assert!(output.status.success(), "{name}: {}", stderr(&output));
        let text = stdout(&output);
        assert!(text.contains("organization"), "{name}: {text}");
    }
    let output = orgsync(
        &[
            "explain",
            "--source",
            "stripe",
            "tests/fixtures/stripe/event.customer.subscription.updated.json",
        ],
        &[],
    );
    let text = stdout(&output);
    for expected in [
        "org_01HZX5K9M3ABCDEF",
        "plan_type",
        "pro_monthly",
        "subscription_status",
        "active",
        "seats",
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
}

#[test]
fn check_config_names_the_broken_rule() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(config_path()).unwrap().replace(
        "subscription_status = \"$.data.object.status\"",
        "subscription_status = \"$.data.object[status\"",
    );
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, text).unwrap();
    let output = orgsync(&["--config", broken.to_str().unwrap(), "check-config"], &[]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("stripe subscription → organization"),
        "{message}"
    );
    assert_eq!(
        message.trim().lines().count(),
        1,
        "one clear line: {message}"
    );

    let ok = orgsync(&["check-config"], &[]);
    assert!(ok.status.success(), "{}", stderr(&ok));

    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "[server]\nlisten_addr = \"127.0.0.1:1\"\n").unwrap();
    let output = orgsync(&["--config", typo.to_str().unwrap(), "check-config"], &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("listen_addr"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn jobs_list_dead_and_retry() {
    let standin = scalekit_standin::StandIn::start().await.unwrap();
    standin.create_organization("Acme Corp", Some("org_01HZX5K9M3ABCDEF"), &[]);
    let app = spawn_app_with(TestOptions {
        standin: Some(standin),
        ..Default::default()
    })
    .await;
    app.post_stripe(&fixture("stripe/event.customer.subscription.updated.json"))
        .await;
    app.standin.fail_next(1, Fault::Status(403));
    app.drain().await;
    let db = format!(
        "sqlite://{}",
        app.data_dir.path().join("orgsync.db").display()
    );
    let env = [("ORGSYNC_DATABASE_URL", db)];
    let listed = orgsync(&["jobs", "list", "--state", "dead"], &env);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let line = stdout(&listed);
    let job: serde_json::Value =
        serde_json::from_str(line.lines().next().expect("one dead job")).unwrap();
    assert!(job["last_error"].as_str().unwrap().contains("403"));
    let id = job["id"].to_string();
    let retried = orgsync(&["jobs", "retry", &id], &env);
    assert!(retried.status.success(), "{}", stderr(&retried));
    let again = orgsync(&["jobs", "retry", &id], &env);
    assert!(!again.status.success(), "a pending job cannot be retried");
    app.drain().await;
    assert!(app.jobs(Some(JobState::Dead)).await.is_empty());
    let org = app
        .standin
        .organization_by_external_id("org_01HZX5K9M3ABCDEF")
        .unwrap();
    assert_eq!(org.metadata["subscription_status"], "active");
    let dry = orgsync(&["replay", "--dry-run", "--source", "stripe"], &env);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(
        stdout(&dry).contains("1 events: 1 matched, 0 ignored, 0 rejected; would enqueue 1 jobs"),
        "{}",
        stdout(&dry)
    );
    let pruned = orgsync(&["prune"], &env);
    assert!(pruned.status.success(), "{}", stderr(&pruned));
    assert!(
        stdout(&pruned).contains("pruned 0 jobs, 0 events and 0 deliveries older than 30 days"),
        "{}",
        stdout(&pruned)
    );
    assert!(
        !orgsync(&["prune", "--older-than-days", "0"], &env)
            .status
            .success()
    );
    let bad = orgsync(&["replay", "--since", "yesterday"], &env);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("RFC 3339"), "{}", stderr(&bad));
    app.stop().await;
}

#[test]
fn explain_works_on_soap_files() {
    let output = orgsync(
        &[
            "explain",
            "--source",
            "salesforce",
            "tests/fixtures/salesforce/outbound_message.account.constructed.xml",
        ],
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    for expected in [
        "04l5g000003AbCdAAK",
        "org_01HZX5K9M3ABCDEF",
        "crm_account_id",
        "0015g00000XyZabAAF",
        "ignored",
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
    let output = orgsync(
        &[
            "explain",
            "--source",
            "salesforce",
            "tests/fixtures/salesforce/outbound_message.contact.aspnet-webhooks.xml",
        ],
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("user 0031I0000081tbPQAQ"),
        "{}",
        stdout(&output)
    );
    let bad = orgsync(
        &[
            "explain",
            "--source",
            "salesforce",
            "tests/fixtures/salesforce/outbound_message.empty.aspnet-webhooks.xml",
        ],
        &[],
    );
    assert!(!bad.status.success());
    assert_eq!(stderr(&bad).trim().lines().count(), 1, "{}", stderr(&bad));
}

/// The `ENV` pairs of the Dockerfile, so the container's settings are tested as written.
fn dockerfile_env() -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    let line = joined
        .lines()
        .find(|l| l.starts_with("ENV "))
        .expect("an ENV line");
    line["ENV ".len()..]
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn the_container_command_lines_serve_and_pass_the_healthcheck() {
    let env = dockerfile_env();
    let get = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("ORGSYNC_LISTEN"), "0.0.0.0:8080");
    assert!(get("ORGSYNC_DATABASE_URL").starts_with("sqlite:///var/lib/orgsync/"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let overrides = [
        ("ORGSYNC_CONFIG", config_path().display().to_string()),
        ("ORGSYNC_LISTEN", format!("0.0.0.0:{port}")),
        (
            "ORGSYNC_DATABASE_URL",
            format!("sqlite://{}/orgsync.db", dir.path().display()),
        ),
        ("ORGSYNC_LOG_FORMAT", get("ORGSYNC_LOG_FORMAT")),
    ];
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_orgsync"))
        .arg("serve")
        .env_clear()
        .envs(overrides.iter().map(|(k, v)| (*k, v.as_str())))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let healthcheck = || {
        Command::new(env!("CARGO_BIN_EXE_orgsync"))
            .arg("healthcheck")
            .env_clear()
            .envs(overrides.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap()
    };
    wait_for_blocking(
        std::time::Duration::from_secs(30),
        "the daemon healthy",
        || healthcheck().status.success(),
    );
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let status = daemon.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM ends the daemon with exit 0: {status:?}"
    );
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut daemon.stderr.take().unwrap(), &mut logs).unwrap();
    let first: serde_json::Value =
        serde_json::from_str(logs.lines().next().unwrap()).expect("JSON logs");
    assert!(first["level"].is_string(), "{first}");
    assert!(
        !healthcheck().status.success(),
        "a stopped daemon fails the healthcheck"
    );
}
