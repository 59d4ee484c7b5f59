//! The closed sets the store records as text: a job's state and an event's status. Their
//! names are written and parsed here only; migration 0006 makes the database refuse any
//! other value.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Normalized;

/// The life of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its `run_at`.
    Pending,
    /// Claimed by a worker under a lease.
    Running,
    /// Applied (or found already applied).
    Done,
    /// Deliberately not applied (`on_missing = "skip"`).
    Skipped,
    /// Failed permanently; kept for inspection and manual retry.
    Dead,
}

impl JobState {
    /// Every state, in the order of a job's life (as operators see them listed).
    pub const ALL: [JobState; 5] = [
        JobState::Pending,
        JobState::Running,
        JobState::Done,
        JobState::Skipped,
        JobState::Dead,
    ];

    /// Whether an operator may make a job in this state run again (dead or skipped).
    pub fn retryable(self) -> bool {
        matches!(self, JobState::Dead | JobState::Skipped)
    }

    /// The name stored in the database and shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Skipped => "skipped",
            JobState::Dead => "dead",
        }
    }
}

impl std::str::FromStr for JobState {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == name)
            .ok_or_else(|| {
                format!("unknown job state {name:?}; use pending, running, done, skipped or dead")
            })
    }
}

impl TryFrom<String> for JobState {
    type Error = String;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of a stored event when the rules ran on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// A rule matched: the event made jobs (or links).
    Accepted,
    /// No rule handles it.
    Ignored,
    /// A rule matched but a required value was missing or invalid (the reason is kept).
    Rejected,
}

impl EventStatus {
    /// Every status.
    pub const ALL: [EventStatus; 3] = [
        EventStatus::Accepted,
        EventStatus::Ignored,
        EventStatus::Rejected,
    ];

    /// The name stored in the database and shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Accepted => "accepted",
            EventStatus::Ignored => "ignored",
            EventStatus::Rejected => "rejected",
        }
    }

    /// The status the rules' result gives an event, with the reason of a rejection.
    pub fn of(normalized: &Normalized) -> (Self, Option<&str>) {
        match normalized {
            Normalized::Matched { .. } => (EventStatus::Accepted, None),
            Normalized::Ignored => (EventStatus::Ignored, None),
            Normalized::Rejected { reason } => (EventStatus::Rejected, Some(reason.as_str())),
        }
    }
}

impl std::str::FromStr for EventStatus {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == name)
            .ok_or_else(|| {
                format!("unknown event status {name:?}; use accepted, ignored or rejected")
            })
    }
}

impl TryFrom<String> for EventStatus {
    type Error = String;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

impl fmt::Display for EventStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_value_and_serialises_as_itself() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>(), Ok(state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        for status in EventStatus::ALL {
            assert_eq!(status.as_str().parse::<EventStatus>(), Ok(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }

    #[test]
    fn unknown_names_are_refused_with_the_known_ones() {
        let error = "superseded".parse::<JobState>().unwrap_err();
        assert!(
            error.contains("pending, running, done, skipped or dead"),
            "{error}"
        );
        let error = "Accepted".parse::<EventStatus>().unwrap_err();
        assert!(error.contains("accepted, ignored or rejected"), "{error}");
    }
}
