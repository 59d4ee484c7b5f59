//! The serde visitors behind `PayloadFields::parse`: build the parts read, check and drop
//! the rest.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::PayloadFields;

/// Deserializes a value keeping only the given parts.
pub(super) struct Pruned<'f>(pub(super) &'f PayloadFields);

impl<'de> DeserializeSeed<'de> for Pruned<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        match self.0 {
            PayloadFields::Whole => de::Deserialize::deserialize(deserializer),
            PayloadFields::Parts { members, elements } => {
                deserializer.deserialize_any(Kept { members, elements })
            }
        }
    }
}

/// Builds an object or array of the listed parts only; any other value whole.
struct Kept<'f> {
    /// The members kept of an object.
    members: &'f BTreeMap<String, PayloadFields>,
    /// The elements kept of an array.
    elements: &'f BTreeMap<usize, PayloadFields>,
}

impl<'de> Visitor<'de> for Kept<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(MemberName(name)) = map.next_key()? {
            match self.members.get(name.as_ref()) {
                Some(fields) => {
                    let value = map.next_value_seed(Pruned(fields))?;
                    object.insert(name.into_owned(), value);
                }
                None => {
                    map.next_value::<Skipped>()?;
                }
            }
        }
        Ok(Value::Object(object))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        let Some(&last) = self.elements.keys().next_back() else {
            // Only members are read, and an array has none: kept whole all the same.
            while let Some(item) = seq.next_element::<Value>()? {
                items.push(item);
            }
            return Ok(Value::Array(items));
        };
        for index in 0.. {
            let found = match self.elements.get(&index) {
                Some(fields) => seq.next_element_seed(Pruned(fields))?,
                None => seq.next_element::<Skipped>()?.map(|Skipped| Value::Null),
            };
            match found {
                Some(item) if index <= last => items.push(item),
                Some(_) => {}
                None => break,
            }
        }
        Ok(Value::Array(items))
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// A value checked and dropped without being built. Unlike `IgnoredAny`, which serde_json
/// skips without a depth limit, it nests through `deserialize_any`, so a document nested
/// past serde_json's recursion limit is refused here exactly as by a whole parse (the
/// payload is parsed whole again from the stored body when read).
struct Skipped;

impl<'de> de::Deserialize<'de> for Skipped {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkippedVisitor)
    }
}

/// See [`Skipped`].
struct SkippedVisitor;

impl<'de> Visitor<'de> for SkippedVisitor {
    type Value = Skipped;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skipped, A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value::<Skipped>()?;
        }
        Ok(Skipped)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skipped, A::Error> {
        while seq.next_element::<Skipped>()?.is_some() {}
        Ok(Skipped)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_str<E>(self, _: &str) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_unit<E>(self) -> Result<Skipped, E> {
        Ok(Skipped)
    }
}

/// A member name, borrowed from the body when it has no escapes.
struct MemberName<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for MemberName<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(MemberNameVisitor)
    }
}

/// See [`MemberName`].
struct MemberNameVisitor;

impl<'de> Visitor<'de> for MemberNameVisitor {
    type Value = MemberName<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(MemberName(Cow::Borrowed(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        Ok(MemberName(Cow::Owned(value.to_owned())))
    }

    fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
        Ok(MemberName(Cow::Owned(value)))
    }
}
