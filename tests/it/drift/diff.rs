//! `replay --dry-run --diff` (library, admin API, CLI) and the `drift` command of the
//! binary.

use orgsync::replay::{TargetDiff, diff};
use orgsync::rules::RuleSet;
use orgsync::store::ReplayFilter;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::*;

/// The default rules with plan_type from the price id (a rule "fix").
fn fixed_rules() -> RuleSet {
    let text = std::fs::read_to_string(config_path()).unwrap().replace(
        "plan_type = [\"$.data.object.items.data[0].price.lookup_key\", \"$.data.object.items.data[0].price.id\"]",
        "plan_type = \"$.data.object.items.data[0].price.id\"",
    );
    let settings = orgsync::config::Settings::parse(&text).unwrap();
    let names: Vec<&str> = settings.sources.iter().map(|s| s.name.as_str()).collect();
    RuleSet::compile(&settings.rules, &names).unwrap()
}

fn key<'a>(target: &'a TargetDiff, name: &str) -> &'a orgsync::replay::KeyDiff {
    target.keys.iter().find(|k| k.key == name).unwrap()
}

#[tokio::test]
async fn a_replay_diff_reads_live_objects_writes_nothing_and_marks_kept_keys() {
    let (app, _) = app_after(&[UPDATED, QUANTITY]).await;
    let events = app
        .store
        .events_to_replay(&ReplayFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let older = events.iter().min_by_key(|e| e.version).unwrap().id;
    let jobs_before = app.jobs(None).await.len();
    let requests_before = app.standin.requests().len();
    let filter = ReplayFilter {
        ids: vec![older],
        limit: 10,
        ..Default::default()
    };
    let diffs = diff(
        &app.store,
        &fixed_rules(),
        &filter,
        &mut reader(&app.standin),
    )
    .await
    .unwrap();
    assert_eq!(api_methods(&app.standin, requests_before), vec!["GET"]);
    assert_eq!(
        app.jobs(None).await.len(),
        jobs_before,
        "a diff stores no job"
    );
    assert_eq!(diffs.len(), 1);
    let target = &diffs[0];
    assert_eq!(target.target, TARGET);
    assert!(target.exists);
    // The newer event set every key this one sets: all of them are kept.
    for name in ["plan_type", "seats", "subscription_status"] {
        let k = key(target, name);
        assert!(k.kept && !k.write, "{k:?}");
        assert_eq!(k.live, k.after, "{k:?}");
    }

    // Both events: the newer one's fixed plan_type would be written, seats stay.
    let both = ReplayFilter {
        limit: 10,
        ..Default::default()
    };
    let diffs = diff(&app.store, &fixed_rules(), &both, &mut reader(&app.standin))
        .await
        .unwrap();
    let plan = key(&diffs[0], "plan_type");
    assert_eq!(plan.live.as_deref(), Some("pro_monthly"));
    assert!(
        plan.after
            .as_deref()
            .is_some_and(|p| p.starts_with("price_")),
        "{plan:?}"
    );
    assert!(plan.write && !plan.kept);
    let seats = key(&diffs[0], "seats");
    assert!(!seats.write && !seats.kept, "{seats:?}");
    assert_eq!(
        api_methods(&app.standin, requests_before),
        vec!["GET", "GET"]
    );
    assert_eq!(app.jobs(None).await.len(), jobs_before);

    // The same through the admin API.
    let body = json!({"ids": [older], "dry_run": true, "diff": true});
    let (code, answer) = admin(&app, Method::POST, "/admin/replay", Some(body)).await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    let keys = &answer["diff"][0]["keys"];
    let seats = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "seats")
        .unwrap();
    assert_eq!(
        (seats["kept"].clone(), seats["write"].clone()),
        (json!(true), json!(false))
    );
    let (code, _) = admin(
        &app,
        Method::POST,
        "/admin/replay",
        Some(json!({"diff": true})),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "a diff needs dry_run");
    assert_eq!(app.jobs(None).await.len(), jobs_before);
    assert!(
        api_methods(&app.standin, requests_before)
            .iter()
            .all(|m| m == "GET")
    );
    app.stop().await;
}

#[tokio::test]
async fn the_periodic_check_publishes_drifted_keys_and_its_time() {
    let (app, org) = app_after(&[UPDATED]).await;
    app.standin.edit_organization_metadata(
        &org,
        &[
            ("plan_type", Some("hand_edit")),
            ("seats", Some("1")),
            ("billing_customer_id", None),
        ],
    );
    let (data_dir, standin) = app.stop().await;
    let started = now_ms() / 1000;
    let app = spawn_app_with(TestOptions {
        standin: Some(standin),
        data_dir: Some(data_dir),
        tune: Some(Box::new(|s| s.drift.interval_minutes = 60)),
        ..Default::default()
    })
    .await;
    wait_for_ok(Duration::from_secs(30), "the drift metrics", async || {
        let text = app.metrics_text().await;
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        let at = value("orgsync_drift_last_check_timestamp_seconds").unwrap_or(0.0);
        if at >= started as f64 && value("orgsync_drifted_keys") == Some(3.0) {
            return Ok(());
        }
        Err(text)
    })
    .await;
    app.stop().await;
}

/// Runs the `orgsync` binary against the app's database and stand-in (off the runtime, so
/// the stand-in keeps answering); returns stdout, failing on a non-zero exit.
async fn orgsync_cli(app: &TestApp, args: &[&str]) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_orgsync"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .env_clear()
        .env(
            "ORGSYNC_DATABASE_URL",
            format!(
                "sqlite://{}",
                app.data_dir.path().join("orgsync.db").display()
            ),
        )
        .env("SCALEKIT_ENVIRONMENT_URL", app.standin.base_url())
        .env("SCALEKIT_CLIENT_ID", scalekit_standin::CLIENT_ID)
        .env("SCALEKIT_CLIENT_SECRET", scalekit_standin::CLIENT_SECRET);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?}: {stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn the_cli_prints_drift_and_diffs_and_repairs() {
    let (app, org) = app_after(&[UPDATED]).await;
    app.standin
        .edit_organization_metadata(&org, &[("plan_type", Some("enterprise"))]);
    let text = orgsync_cli(&app, &["drift"]).await;
    assert!(text.contains(TARGET), "{text}");
    assert!(
        text.contains(
            "plan_type  changed        orgsync wrote \"pro_monthly\", live \"enterprise\""
        ),
        "{text}"
    );
    assert!(text.contains("1 targets checked: 1 drifted keys"), "{text}");
    let json: Value = serde_json::from_str(&orgsync_cli(&app, &["drift", "--json"]).await).unwrap();
    assert_eq!(json["targets"][0]["keys"][0]["drift"], "changed");

    let lines = orgsync_cli(&app, &["replay", "--dry-run", "--diff", "--json"]).await;
    let targets: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(targets.len(), 1, "{lines}");
    let plan = targets[0]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "plan_type")
        .unwrap()
        .clone();
    assert_eq!(
        plan,
        json!({"key": "plan_type", "live": "enterprise", "after": "pro_monthly", "write": true, "kept": false})
    );
    let text = orgsync_cli(&app, &["replay", "--dry-run", "--diff"]).await;
    let line = text
        .lines()
        .find(|l| l.contains("plan_type"))
        .unwrap_or_default();
    assert!(
        line.contains("\"enterprise\"") && line.ends_with("-> \"pro_monthly\"  write"),
        "{text}"
    );

    let text = orgsync_cli(&app, &["drift", "--repair"]).await;
    assert!(
        text.contains("enqueued 1 repair jobs writing back 1 keys"),
        "{text}"
    );
    app.drain().await;
    assert_eq!(metadata(&app)["plan_type"], "pro_monthly");
    app.stop().await;
}
