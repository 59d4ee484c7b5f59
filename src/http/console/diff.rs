//! The diff/drift section of the Target and Replay pages, as plain data. The live diff
//! against Scalekit (issue 9: replay `--diff`, drift) fills a [`DiffView`]; until it is
//! wired, the pages pass `None` and the section says so. The template is
//! `templates/console/diff.html`.

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

/// Why the section is empty in this build.
pub const NOT_WIRED: &str =
    "The comparison against live Scalekit is not available in this build yet.";
