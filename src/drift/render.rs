//! Readable text for drift reports and replay diffs (the JSON forms are the types
//! themselves, serialized).

use std::fmt::Write as _;

use super::{DriftKind, DriftReport, TargetDrift};
use crate::replay::TargetDiff;

/// A value as shown in a table: quoted, or `(absent)`.
fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "(absent)".to_owned(), |v| format!("{v:?}"))
}

/// The heading line of a target: its key and Scalekit id.
fn heading(out: &mut String, target: &str, scalekit_id: Option<&str>) {
    match scalekit_id {
        Some(id) => {
            let _ = writeln!(out, "{target} ({id})");
        }
        None => {
            let _ = writeln!(out, "{target}");
        }
    }
}

/// A drift report as text: one block per target with findings, then a summary line.
pub fn render_drift(report: &DriftReport) -> String {
    let mut out = String::new();
    for target in &report.targets {
        drift_target(&mut out, target);
    }
    let _ = write!(
        out,
        "{} targets checked: {} drifted keys",
        report.targets_checked, report.drifted_keys
    );
    if report.unreadable_targets > 0 {
        let _ = write!(
            out,
            ", {} targets unreadable or gone",
            report.unreadable_targets
        );
    }
    if report.unknown_keys > 0 {
        let _ = write!(
            out,
            ", {} keys written before values were recorded (not compared)",
            report.unknown_keys
        );
    }
    out.push('\n');
    out
}

fn drift_target(out: &mut String, target: &TargetDrift) {
    heading(out, target.target.as_str(), target.scalekit_id.as_deref());
    if target.missing {
        let _ = writeln!(out, "  no {} has this external id any more", target.kind);
    }
    if let Some(error) = &target.error {
        let _ = writeln!(out, "  not read: {error}");
    }
    let width = target.keys.iter().map(|k| k.key.len()).max().unwrap_or(0);
    for key in &target.keys {
        let what = match key.drift {
            DriftKind::Absent => "absent       ",
            DriftKind::Changed => "changed      ",
            DriftKind::NeverWritten => "never written",
        };
        let wrote = match (key.drift, &key.written) {
            (DriftKind::NeverWritten, _) => "orgsync never wrote it".to_owned(),
            (_, Some(value)) => format!("orgsync wrote {value:?}"),
            (_, None) => "orgsync removed it".to_owned(),
        };
        let _ = writeln!(
            out,
            "  {:width$}  {what}  {wrote}, live {}",
            key.key,
            shown(key.live.as_deref())
        );
    }
}

/// A replay diff as text: per target, per key: live value → value after, and what the
/// replay does with it.
pub fn render_diff(diffs: &[TargetDiff]) -> String {
    let mut out = String::new();
    let mut writes = 0;
    for target in diffs {
        heading(
            &mut out,
            target.target.as_str(),
            target.scalekit_id.as_deref(),
        );
        if let Some(error) = &target.error {
            let _ = writeln!(out, "  not read: {error}");
        } else if !target.exists {
            let _ = writeln!(
                out,
                "  does not exist in Scalekit (the rule's on_missing decides)"
            );
        }
        if let Some(id) = &target.new_external_id {
            let _ = writeln!(out, "  external id would change to {id:?}");
        }
        for reason in &target.refused {
            let _ = writeln!(out, "  refused: {reason}");
        }
        let width = target.keys.iter().map(|k| k.key.len()).max().unwrap_or(0);
        let lives: Vec<String> = target
            .keys
            .iter()
            .map(|k| shown(k.live.as_deref()))
            .collect();
        let live_width = lives.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        for (key, live) in target.keys.iter().zip(lives) {
            let verdict = if key.kept {
                "kept (a newer event wrote it)"
            } else if key.write {
                writes += 1;
                "write"
            } else {
                "unchanged"
            };
            let after = shown(key.after.as_deref());
            let _ = writeln!(
                out,
                "  {:width$}  {live:live_width$} -> {after}  {verdict}",
                key.key
            );
        }
    }
    let _ = writeln!(
        out,
        "{} targets: {writes} keys would be written",
        diffs.len()
    );
    out
}
