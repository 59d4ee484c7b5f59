//! Scalekit's metadata limits, checked before every request that carries metadata so a
//! map that can never be accepted fails at once, permanently, naming the key.

use std::collections::BTreeMap;

use crate::model::TargetKind;
use crate::model::limits::{METADATA_KEY_CHARS, METADATA_VALUE_CHARS};

/// A metadata map Scalekit would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// More pairs than the object kind allows.
    #[error(
        "{kind} metadata would have {count} keys but Scalekit allows at most {max}; \
         map fewer keys to this {kind} or unset some"
    )]
    TooManyPairs {
        /// Organization or user.
        kind: TargetKind,
        /// Pairs in the merged map.
        count: usize,
        /// The kind's limit.
        max: usize,
    },
    /// A key outside 3–25 characters.
    #[error(
        "{kind} metadata key {key:?} has {len} characters but Scalekit needs {} to {}; \
         rename the key in the mapping rules",
        METADATA_KEY_CHARS.start(),
        METADATA_KEY_CHARS.end()
    )]
    KeyLength {
        /// Organization or user.
        kind: TargetKind,
        /// The offending key.
        key: String,
        /// Its length in characters.
        len: usize,
    },
    /// A value outside 1–256 characters.
    #[error(
        "{kind} metadata value of key {key:?} has {len} characters but Scalekit needs {} to {}; \
         unset the key instead of sending an empty value, or shorten the value",
        METADATA_VALUE_CHARS.start(),
        METADATA_VALUE_CHARS.end()
    )]
    ValueLength {
        /// Organization or user.
        kind: TargetKind,
        /// The key whose value is wrong.
        key: String,
        /// The value's length in characters.
        len: usize,
    },
}

/// Checks a complete metadata map against Scalekit's limits for `kind`: at most 10 pairs on
/// an organization and 20 on a user, keys of 3–25 characters, values of 1–256 characters.
pub fn validate_metadata(
    kind: TargetKind,
    metadata: &BTreeMap<String, String>,
) -> Result<(), MetadataError> {
    let max = kind.max_metadata_pairs();
    if metadata.len() > max {
        return Err(MetadataError::TooManyPairs {
            kind,
            count: metadata.len(),
            max,
        });
    }
    for (key, value) in metadata {
        let len = key.chars().count();
        if !METADATA_KEY_CHARS.contains(&len) {
            return Err(MetadataError::KeyLength {
                kind,
                key: key.clone(),
                len,
            });
        }
        let len = value.chars().count();
        if !METADATA_VALUE_CHARS.contains(&len) {
            return Err(MetadataError::ValueLength {
                kind,
                key: key.clone(),
                len,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn numbered(count: usize) -> BTreeMap<String, String> {
        (0..count)
            .map(|i| (format!("key{i}"), "v".to_owned()))
            .collect()
    }

    #[test]
    fn pair_limits_depend_on_the_kind() {
        assert!(validate_metadata(TargetKind::Organization, &numbered(10)).is_ok());
        let err = validate_metadata(TargetKind::Organization, &numbered(11)).unwrap_err();
        assert!(matches!(
            err,
            MetadataError::TooManyPairs {
                count: 11,
                max: 10,
                ..
            }
        ));
        assert!(validate_metadata(TargetKind::User, &numbered(20)).is_ok());
        assert!(validate_metadata(TargetKind::User, &numbered(21)).is_err());
    }

    #[test]
    fn key_lengths_are_three_to_twenty_five_characters() {
        let org = TargetKind::Organization;
        assert!(validate_metadata(org, &map(&[("plan", "pro")])).is_ok());
        assert!(validate_metadata(org, &map(&[("ééé", "pro")])).is_ok());
        let err = validate_metadata(org, &map(&[("id", "1")])).unwrap_err();
        assert!(err.to_string().contains("\"id\""), "{err}");
        let long = "stripe_subscription_status";
        let err = validate_metadata(org, &map(&[(long, "active")])).unwrap_err();
        assert!(err.to_string().contains(long), "{err}");
    }

    #[test]
    fn values_are_one_to_two_hundred_fifty_six_characters() {
        let user = TargetKind::User;
        let err = validate_metadata(user, &map(&[("plan", "")])).unwrap_err();
        assert!(matches!(&err, MetadataError::ValueLength { key, len: 0, .. } if key == "plan"));
        assert!(err.to_string().contains("unset the key"));
        let max = "ü".repeat(256);
        assert!(validate_metadata(user, &map(&[("plan", &max)])).is_ok());
        let over = "v".repeat(257);
        assert!(validate_metadata(user, &map(&[("plan", &over)])).is_err());
    }
}
