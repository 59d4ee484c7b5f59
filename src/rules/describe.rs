//! Human-readable text of what the rules made of an event, for `orgsync explain`.

use std::fmt::Write;

use crate::model::{Change, CreateSpec, LinkUpdate, Normalized, OnMissing, TargetKind};

/// Describes a normalization result: each change (target, keys set and removed, what
/// happens when the target is missing) and each link learned; or why nothing happens.
pub fn describe(normalized: &Normalized) -> String {
    match normalized {
        Normalized::Ignored => "ignored: no rule handles this event\n".to_owned(),
        Normalized::Rejected { reason } => format!("rejected: {reason}\n"),
        Normalized::Matched { changes, links } => {
            let mut out = String::new();
            for change in changes {
                describe_change(&mut out, change);
            }
            for link in links {
                describe_link(&mut out, link);
            }
            out
        }
    }
}

fn describe_change(out: &mut String, change: &Change) {
    let _ = writeln!(out, "rule {:?} changes {}", change.rule, change.target);
    if change.set.is_empty() && change.unset.is_empty() && change.new_external_id.is_none() {
        let _ = writeln!(out, "  (no metadata values in this event)");
    }
    for (key, value) in &change.set {
        let _ = writeln!(out, "  set   {key} = {value:?}");
    }
    for key in &change.unset {
        let _ = writeln!(out, "  unset {key}");
    }
    if let Some(id) = &change.new_external_id {
        let _ = writeln!(out, "  new external id {id:?}");
    }
    let missing = match change.on_missing {
        OnMissing::Retry => "retry later",
        OnMissing::Create => "create it",
        OnMissing::Skip => "skip the change",
    };
    let _ = writeln!(out, "  if it does not exist: {missing}");
    if let Some(create) = &change.create {
        describe_create(out, create, change.target.kind());
    }
}

fn describe_create(out: &mut String, create: &CreateSpec, kind: TargetKind) {
    let fields = [
        ("display_name", &create.display_name),
        ("email", &create.email),
        ("first_name", &create.first_name),
        ("last_name", &create.last_name),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            let _ = writeln!(out, "    with {name} = {value:?}");
        }
    }
    match &create.organization {
        Some(org) => {
            let _ = writeln!(out, "    in {org}");
        }
        None if kind == TargetKind::User => {
            let _ = writeln!(out, "    (no organization found in this event)");
        }
        None => {}
    }
}

fn describe_link(out: &mut String, link: &LinkUpdate) {
    let _ = writeln!(
        out,
        "learns link {} {} → {} {}",
        link.link, link.key, link.kind, link.external_id
    );
}
