//! Scalekit's metadata limits (`scalekit-api.md`), defined once: rules validation at config
//! load, the domain's [`MetadataKey`](super::MetadataKey), and the check before every
//! PATCH all read them from here. The Scalekit stand-in (a crate of its own) keeps its own
//! copy; a test below holds the two equal.

use std::ops::RangeInclusive;

/// How many characters a metadata key may have.
pub const METADATA_KEY_CHARS: RangeInclusive<usize> = 3..=25;

/// How many characters a metadata value may have.
pub const METADATA_VALUE_CHARS: RangeInclusive<usize> = 1..=256;

/// The most metadata pairs an organization may carry.
pub const ORGANIZATION_MAX_PAIRS: usize = 10;

/// The most metadata pairs a user may carry.
pub const USER_MAX_PAIRS: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standin_enforces_the_same_limits() {
        let bounds = |r: &RangeInclusive<usize>| (*r.start(), *r.end());
        assert_eq!(bounds(&METADATA_KEY_CHARS), scalekit_standin::KEY_CHARS);
        assert_eq!(bounds(&METADATA_VALUE_CHARS), scalekit_standin::VALUE_CHARS);
        assert_eq!(ORGANIZATION_MAX_PAIRS, scalekit_standin::ORG_MAX_PAIRS);
        assert_eq!(USER_MAX_PAIRS, scalekit_standin::USER_MAX_PAIRS);
    }
}
