//! The diff/drift section of the Target and Replay pages, as plain data: a replay diff
//! ([`crate::replay::diff`]) or a drift check ([`crate::drift::check`]) against live
//! Scalekit, turned into rows. The template is `templates/console/diff.html`.

use crate::drift::{DriftKind, DriftReport};
use crate::replay::TargetDiff;

/// What a key would become, or how it stands against live Scalekit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffRow {
    /// The metadata key.
    pub key: String,
    /// Its value in Scalekit now (`None`: absent).
    pub live: Option<String>,
    /// Its value after the change, or the value orgsync last wrote (`None`: absent).
    pub after: Option<String>,
    /// The verdict in a word or two: `would write`, `kept`, `absent`, `drifted`, ….
    pub verdict: String,
}

/// One target's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffTarget {
    /// The target, as the operator reads it (`organization org_01…`).
    pub target: String,
    /// Its keys.
    pub rows: Vec<DiffRow>,
    /// A note such as "not found in Scalekit".
    pub note: Option<String>,
}

/// The diff/drift section's data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffView {
    /// Per target.
    pub targets: Vec<DiffTarget>,
}

/// Why the section is empty when orgsync cannot read live objects.
pub const NO_CREDENTIALS: &str =
    "Scalekit credentials are not set: live objects cannot be read, so nothing is compared.";

impl DiffView {
    /// What a replay would change, target by target.
    pub fn of_replay(diffs: &[TargetDiff]) -> Self {
        let targets = diffs
            .iter()
            .map(|d| {
                let mut notes = Vec::new();
                notes.extend(d.error.clone());
                if !d.exists && d.error.is_none() {
                    notes.push(
                        "not found in Scalekit (the worker would wait, create or skip)".into(),
                    );
                }
                if let Some(new) = &d.new_external_id {
                    notes.push(format!("the replay would change the external id to {new}"));
                }
                notes.extend(d.refused.iter().map(|r| format!("refused: {r}")));
                let rows = d
                    .keys
                    .iter()
                    .map(|k| DiffRow {
                        key: k.key.clone(),
                        live: k.live.clone(),
                        after: k.after.clone(),
                        verdict: match (k.kept, k.write) {
                            (true, _) => "kept (a newer event wrote it)",
                            (false, true) => "would write",
                            (false, false) => "unchanged",
                        }
                        .to_owned(),
                    })
                    .collect();
                DiffTarget {
                    target: d.target.to_string(),
                    rows,
                    note: join(notes),
                }
            })
            .collect();
        Self { targets }
    }

    /// The keys of a drift check whose live value differs from what orgsync wrote; the
    /// value "after" is orgsync's (what a repair would write back).
    pub fn of_drift(report: &DriftReport) -> Self {
        let targets = report
            .targets
            .iter()
            .map(|t| {
                let mut notes = Vec::new();
                notes.extend(t.error.clone());
                if t.missing {
                    notes.push("no object with this external id exists in Scalekit".into());
                }
                let rows = t
                    .keys
                    .iter()
                    .map(|k| DiffRow {
                        key: k.key.clone(),
                        live: k.live.clone(),
                        after: k.written.clone(),
                        verdict: match k.drift {
                            DriftKind::Absent => "absent: orgsync set it",
                            DriftKind::Changed => "changed since orgsync wrote it",
                            DriftKind::NeverWritten => "never written by orgsync",
                        }
                        .to_owned(),
                    })
                    .collect();
                DiffTarget {
                    target: t.target.to_string(),
                    rows,
                    note: join(notes),
                }
            })
            .collect();
        Self { targets }
    }
}

/// The notes of one target in one line, or `None`.
fn join(notes: Vec<String>) -> Option<String> {
    (!notes.is_empty()).then(|| notes.join("; "))
}
