//! Tests of `PayloadFields`: the pruned document reads as the whole one.
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
    include_str!("../../../tests/fixtures/stripe/event.customer.subscription.updated.json");

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
    let body =
        br#"{"id":"evt_1","data":{"object":{"customer":"cus_1","big":[1,2,3]},"x":1},"y":{"z":2}}"#;
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
