//! The ids that cross the store boundary: an event's and a job's row id, and the target
//! key the queue serialises on. Each is its own type so one cannot be passed for another.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ExternalId, ModelError, TargetKind};

/// Declares a row-id newtype: an `i64` the database hands out, shown as the number.
macro_rules! row_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// The row id as stored.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                Self(id)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                text.parse().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

row_id!(
    /// A stored event's row id; also its arrival sequence (it breaks version ties).
    EventId
);

row_id!(
    /// A job's row id.
    JobId
);

/// The key the worker serialises on: `org:<external id>`, `user:<external id>`, or
/// `link:org:<link>:<key>` / `link:user:<link>:<key>` while only an alias is known.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TargetKey(String);

impl TargetKey {
    /// The key of an object whose external id is known.
    pub fn external(kind: TargetKind, external_id: &ExternalId) -> Self {
        Self(format!("{}:{external_id}", kind.prefix()))
    }

    /// The key of an object known only through a learned alias.
    pub fn link(kind: TargetKind, link: &str, key: &str) -> Self {
        Self(format!("link:{}:{link}:{key}", kind.prefix()))
    }

    /// Checks and wraps a key given as text (stored, or typed by an operator).
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let rest = text.strip_prefix("link:").unwrap_or(text);
        let known = [TargetKind::Organization, TargetKind::User]
            .into_iter()
            .any(|kind| {
                rest.strip_prefix(kind.prefix())
                    .is_some_and(|r| r.starts_with(':'))
            });
        if !known {
            return Err(ModelError::TargetKey {
                key: text.to_owned(),
            });
        }
        Ok(Self(text.to_owned()))
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The kind and external id of an `org:`/`user:` key; `None` for a link key.
    pub fn external_target(&self) -> Option<(TargetKind, ExternalId)> {
        let (prefix, id) = self.0.split_once(':')?;
        let kind = [TargetKind::Organization, TargetKind::User]
            .into_iter()
            .find(|kind| kind.prefix() == prefix)?;
        Some((kind, ExternalId::parse(id).ok()?))
    }
}

impl TryFrom<String> for TargetKey {
    type Error = ModelError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<TargetKey> for String {
    fn from(key: TargetKey) -> Self {
        key.0
    }
}

/// Compares with the text of a key (tests and look-ups by a typed key).
impl PartialEq<&str> for TargetKey {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Stored as text.
impl<DB: sqlx::Database> sqlx::Type<DB> for TargetKey
where
    String: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as sqlx::Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as sqlx::Type<DB>>::compatible(ty)
    }
}

/// Bound as its text.
impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for TargetKey
where
    String: sqlx::Encode<'q, DB>,
{
    fn encode_by_ref(
        &self,
        buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <String as sqlx::Encode<'q, DB>>::encode_by_ref(&self.0, buf)
    }
}

/// Read back through [`TargetKey::parse`]: a stored key of no known kind is an error.
impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for TargetKey
where
    String: sqlx::Decode<'r, DB>,
{
    fn decode(
        value: <DB as sqlx::Database>::ValueRef<'r>,
    ) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <String as sqlx::Decode<'r, DB>>::decode(value)?;
        Ok(Self::parse(&text)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_keys_name_a_known_kind() {
        let id = ExternalId::parse("E:1").unwrap();
        let org = TargetKey::external(TargetKind::Organization, &id);
        assert_eq!(org.as_str(), "org:E:1");
        assert_eq!(TargetKey::parse("org:E:1"), Ok(org.clone()));
        assert_eq!(org.external_target(), Some((TargetKind::Organization, id)));
        let link = TargetKey::link(TargetKind::User, "crm", "C1");
        assert_eq!(link.as_str(), "link:user:crm:C1");
        assert_eq!(link.external_target(), None);
        assert!(TargetKey::parse("link:user:crm:C1").is_ok());
        for bad in ["E1", "organization:E1", "link:team:x:y", "orgs:E1", ""] {
            assert!(TargetKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn row_ids_show_and_parse_as_their_number() {
        assert_eq!(EventId(7).to_string(), "7");
        assert_eq!("42".parse::<JobId>(), Ok(JobId(42)));
        assert!("x".parse::<JobId>().is_err());
        assert_eq!(serde_json::to_value(JobId(3)).unwrap(), 3);
    }
}
