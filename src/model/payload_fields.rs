//! The parts of a JSON payload that something reads, and a parser that builds only those.
//!
//! A webhook's payload is parsed for the source's own fields (id, type, time) and for
//! the rules, which read a few values of it. A Stripe event is several KiB of nested
//! objects; building all of it as a `serde_json::Value` (a map node and a string per
//! member) and dropping it again was the largest single cost of a delivery
//! (BENCHMARKS.md, session 7). [`PayloadFields::parse`] checks the whole body as JSON,
//! as before, but builds only the members some JSONPath can reach: every JSONPath reads
//! the same nodes in the pruned document as in the whole one.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// What of a JSON value is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadFields {
    /// All of it.
    Whole,
    /// Some of its parts, each with what of it is read: of an object, these members; of
    /// an array, these elements (the others before the last one listed become `null`, so
    /// that every element keeps its index; those after it are left out). Any other value
    /// is kept whole.
    Parts {
        /// The members read, by name.
        members: BTreeMap<String, PayloadFields>,
        /// The elements read, by index.
        elements: BTreeMap<usize, PayloadFields>,
    },
}

impl Default for PayloadFields {
    /// Nothing is read.
    fn default() -> Self {
        PayloadFields::Parts {
            members: BTreeMap::new(),
            elements: BTreeMap::new(),
        }
    }
}

/// One step from a value to one of its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// An object's member.
    Member(&'a str),
    /// An array's element (counted from 0).
    Element(usize),
}

impl PayloadFields {
    /// Adds the part that `steps` lead to from the root, read whole.
    pub fn add(&mut self, steps: &[Step<'_>]) {
        let mut node = self;
        for step in steps {
            node = match (node, *step) {
                (PayloadFields::Whole, _) => return,
                (PayloadFields::Parts { members, .. }, Step::Member(name)) => {
                    members.entry(name.to_owned()).or_default()
                }
                (PayloadFields::Parts { elements, .. }, Step::Element(index)) => {
                    elements.entry(index).or_default()
                }
            };
        }
        *node = PayloadFields::Whole;
    }

    /// Adds what a JSONPath (RFC 9535) can read: the node its leading member names and
    /// element indexes lead to, whole. Anything else (a wildcard, negative index, slice,
    /// union, filter or `..`) ends the leading steps; a path that names the root again
    /// (inside a filter) or that does not start at the root reads the whole document.
    pub fn add_path(&mut self, path: &str) {
        match leading_steps(path) {
            Some(steps) => self.add(&steps),
            None => *self = PayloadFields::Whole,
        }
    }

    /// Parses a JSON document, building only these parts of it. The whole body is
    /// checked as JSON either way (the same errors as `serde_json::from_slice`).
    pub fn parse(&self, body: &[u8]) -> serde_json::Result<Value> {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let value = Pruned(self).deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(value)
    }
}

/// The steps a JSONPath starts with, or `None` when it may read the whole document (it
/// does not start at `$`, or names `$` again, as a filter may).
fn leading_steps(path: &str) -> Option<Vec<Step<'_>>> {
    let mut rest = path.strip_prefix('$')?;
    if rest.contains('$') {
        return None;
    }
    let mut steps = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after
                .char_indices()
                .find(|&(_, c)| !is_name_char(c))
                .map_or(after.len(), |(at, _)| at);
            let name = &after[..end];
            if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                break;
            }
            steps.push(Step::Member(name));
            rest = &after[end..];
        } else if let Some((step, after)) = bracketed_step(rest) {
            steps.push(step);
            rest = after;
        } else {
            break;
        }
    }
    Some(steps)
}

/// A character of a member-name shorthand (`.name`), RFC 9535 `name-char`.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii()
}

/// `['name']`, `["name"]` (without escapes) or `[N]` (N ≥ 0, without leading zeros) at
/// the start of `text`, and what follows.
fn bracketed_step(text: &str) -> Option<(Step<'_>, &str)> {
    let inner = text.strip_prefix('[')?;
    let (step, after) = match inner.chars().next()? {
        quote @ ('\'' | '"') => {
            let inner = &inner[1..];
            let end = inner.find(quote)?;
            let name = &inner[..end];
            if name.contains('\\') {
                return None;
            }
            (Step::Member(name), &inner[end + 1..])
        }
        '0'..='9' => {
            let end = inner
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(inner.len());
            let digits = &inner[..end];
            if digits.len() > 1 && digits.starts_with('0') {
                return None;
            }
            (Step::Element(digits.parse().ok()?), &inner[end..])
        }
        _ => return None,
    };
    Some((step, after.strip_prefix(']')?))
}

/// Deserializes a value keeping only the given parts.
struct Pruned<'f>(&'f PayloadFields);

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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};
    use serde_json_path::JsonPath;

    use super::PayloadFields;

    fn fields(paths: &[&str]) -> PayloadFields {
        let mut fields = PayloadFields::default();
        for path in paths {
            fields.add_path(path);
        }
        fields
    }

    const STRIPE: &str =
        include_str!("../../tests/fixtures/stripe/event.customer.subscription.updated.json");

    #[test]
    fn every_path_reads_the_same_nodes_in_the_pruned_document() {
        let body = STRIPE.as_bytes();
        let whole: Value = serde_json::from_slice(body).expect("fixture");
        let paths = [
            "$.data.object.customer",
            "$['data'][\"object\"].metadata.plan",
            "$.data.object.items.data[0].price.id",
            "$.data.object.items.data[*].price.lookup_key",
            "$..customer",
            "$.data.object.items.data[?@.quantity > 0].id",
            "$.data.object.items.data[?@.id == $.id].id",
            "$.data.previous_attributes",
            "$.absent.deeper",
            "$.type",
        ];
        for path in paths {
            let pruned = fields(&[path]).parse(body).expect("parses");
            let query = JsonPath::parse(path).expect("path");
            assert_eq!(
                query.query(&pruned).all(),
                query.query(&whole).all(),
                "{path}"
            );
        }
    }

    #[test]
    fn only_the_named_members_are_built() {
        let body = br#"{"id":"evt_1","data":{"object":{"customer":"cus_1","big":[1,2,3]},"x":1},"y":{"z":2}}"#;
        let pruned = fields(&["$.id", "$.data.object.customer"]).parse(body);
        assert_eq!(
            pruned.expect("parses"),
            json!({"id": "evt_1", "data": {"object": {"customer": "cus_1"}}})
        );
        assert_eq!(
            fields(&["$..id"]).parse(body).expect("parses"),
            serde_json::from_slice::<Value>(body).expect("whole")
        );
    }

    #[test]
    fn a_path_through_a_value_that_is_not_an_object_keeps_that_value() {
        let body = br#"{"data":[{"a":1}],"n":3,"s":"t","b":true,"z":null,"f":1.5}"#;
        let pruned = fields(&["$.data.a", "$.n.x", "$.s.x", "$.b.x", "$.z.x", "$.f.x"]).parse(body);
        assert_eq!(
            pruned.expect("parses"),
            serde_json::from_slice::<Value>(body).expect("whole")
        );
    }

    #[test]
    fn a_pruned_parse_refuses_what_a_whole_parse_refuses() {
        for body in [
            &br#"{"id":"evt_1","skipped":{"a":[1,2,}}"#[..],
            br#"{"id":"evt_1"} trailing"#,
            br#"{"id":"evt_1","skipped":"\ud800 broken"#,
            b"",
        ] {
            assert!(serde_json::from_slice::<Value>(body).is_err());
            assert!(fields(&["$.id"]).parse(body).is_err(), "{body:?}");
        }
        let deep = format!("{{\"skipped\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(
            fields(&["$.id"]).parse(deep.as_bytes()).is_err(),
            "recursion limit"
        );
    }

    #[test]
    fn array_elements_read_by_index_keep_their_index() {
        let body = br#"{"a":[{"x":1,"y":2},{"x":3,"y":4},{"x":5}],"b":[1,2]}"#;
        let pruned = fields(&["$.a[1].x", "$.b.c"]).parse(body).expect("parses");
        assert_eq!(pruned, json!({"a": [null, {"x": 3}], "b": [1, 2]}));
        let whole: Value = serde_json::from_slice(body).expect("whole");
        for path in ["$.a[1].x", "$.a[-1].x", "$.a[01]", "$.a[ 1 ]", "$.a[1:]"] {
            let pruned = fields(&[path]).parse(body).expect("parses");
            if let Ok(query) = JsonPath::parse(path) {
                assert_eq!(
                    query.query(&pruned).all(),
                    query.query(&whole).all(),
                    "{path}"
                );
            }
        }
        assert_eq!(fields(&["$.a[-1].x"]), fields(&["$.a"]));
    }

    #[test]
    fn a_later_duplicate_member_wins_as_in_a_whole_parse() {
        let body = br#"{"id":"first","id":"second"}"#;
        assert_eq!(
            fields(&["$.id"]).parse(body).expect("parses"),
            json!({"id": "second"})
        );
    }

    #[test]
    fn escaped_member_names_are_matched_decoded() {
        let body = br#"{"a\u0062":{"c":1}}"#;
        assert_eq!(
            fields(&["$.ab.c"]).parse(body).expect("parses"),
            json!({"ab": {"c": 1}})
        );
    }

    /// A JSON value of a few levels, with member names and lengths the paths below reach.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-c]{0,2}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-c]", inner, 0..4)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    /// A JSONPath into `doc`: each choice takes one step down (a member or element that
    /// exists, picked by the number; now and then one that does not, or a step that is
    /// not a plain name or index).
    fn path_into(doc: &Value, choices: &[(u8, usize)]) -> String {
        let mut path = String::from("$");
        let mut node = Some(doc);
        for &(kind, pick) in choices {
            let (step, next) = match (kind % 8, node) {
                (0, _) => ("[*]".to_owned(), None),
                (1, _) => ("..a".to_owned(), None),
                (2, _) => ("[-1]".to_owned(), None),
                (3, _) => ("[?@.a]".to_owned(), None),
                (4, _) => (format!(".{}", ["a", "b", "zz"][pick % 3]), None),
                (_, Some(Value::Object(members))) if !members.is_empty() => {
                    let (name, value) = members.iter().nth(pick % members.len()).expect("in range");
                    let step = match kind % 2 {
                        0 => format!(".{name}"),
                        _ => format!("['{name}']"),
                    };
                    (step, Some(value))
                }
                (_, Some(Value::Array(items))) if !items.is_empty() => {
                    let index = pick % items.len();
                    (format!("[{index}]"), items.get(index))
                }
                _ => (format!("[{}]", pick % 4), None),
            };
            path.push_str(&step);
            node = next;
        }
        path
    }

    proptest! {
        #[test]
        fn any_path_reads_the_same_nodes_in_any_pruned_document(
            doc in prop_oneof![
                json_value(),
                proptest::collection::btree_map("[a-c]", json_value(), 0..4)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ],
            choices in proptest::collection::vec(proptest::collection::vec((any::<u8>(), any::<usize>()), 0..5), 1..4),
        ) {
            let body = serde_json::to_vec_pretty(&doc).expect("serialises");
            let paths: Vec<String> = choices.iter().map(|c| path_into(&doc, c)).collect();
            let path_texts: Vec<&str> = paths.iter().map(String::as_str).collect();
            let pruned = fields(&path_texts).parse(&body).expect("parses");
            for path in &paths {
                let query = JsonPath::parse(path).expect("a valid path");
                prop_assert_eq!(query.query(&pruned).all(), query.query(&doc).all(), "{}", path);
            }
        }
    }

    #[test]
    fn whole_absorbs_narrower_parts() {
        let mut wide = fields(&["$.data"]);
        wide.add_path("$.data.object.customer");
        assert_eq!(wide, fields(&["$.data"]));
        let mut root = fields(&["$.data.object"]);
        root.add_path("$[?@.x == 1]");
        assert_eq!(root, fields(&["$[?@.x == 1]"]));
        assert_eq!(fields(&["$.a[?@ == $.b]"]), PayloadFields::Whole);
        assert_eq!(fields(&["not a path"]), PayloadFields::Whole);
    }
}
