//! Value specs: lookups, fallbacks, stringification, formats and joins.

use super::*;
use serde_json::json;

fn spec(table: ValueTable) -> ValueSpec {
    ValueSpec::compile(&ValueSpecConfig::Table(table)).unwrap()
}

fn path_spec(p: &str) -> ValueSpec {
    ValueSpec::compile(&ValueSpecConfig::Path(p.into())).unwrap()
}

#[test]
fn singular_detection_skips_quoted_names() {
    assert!(is_singular("$.a.b[0]['x*y']"));
    assert!(is_singular("$.a[-1]"));
    assert!(!is_singular("$.a[*].b"));
    assert!(!is_singular("$..b"));
    assert!(!is_singular("$.a[?@.b == 'c']"));
    assert!(!is_singular("$.a[0:2]"));
    assert!(!is_singular("$.a['b','c']"));
}

#[test]
fn stringifies_scalars_and_refuses_objects() {
    let doc = json!({"s": "x", "n": 8, "f": 1.5, "t": true, "o": {"a": 1}, "e": ""});
    assert_eq!(
        path_spec("$.s").evaluate(&doc),
        Ok(ValueEffect::Set("x".into()))
    );
    assert_eq!(
        path_spec("$.n").evaluate(&doc),
        Ok(ValueEffect::Set("8".into()))
    );
    assert_eq!(
        path_spec("$.f").evaluate(&doc),
        Ok(ValueEffect::Set("1.5".into()))
    );
    assert_eq!(
        path_spec("$.t").evaluate(&doc),
        Ok(ValueEffect::Set("true".into()))
    );
    assert_eq!(path_spec("$.e").evaluate(&doc), Ok(ValueEffect::Remove));
    assert_eq!(
        path_spec("$.missing").evaluate(&doc),
        Ok(ValueEffect::Absent)
    );
    let err = path_spec("$.o").evaluate(&doc).unwrap_err();
    assert!(err.contains("an object"), "{err}");
}

#[test]
fn paths_fall_back_over_null_and_remember_it() {
    let s = ValueSpec::compile(&ValueSpecConfig::Paths(vec!["$.a".into(), "$.b".into()])).unwrap();
    assert_eq!(
        s.evaluate(&json!({"a": null, "b": "y"})),
        Ok(ValueEffect::Set("y".into()))
    );
    assert_eq!(s.evaluate(&json!({"a": null})), Ok(ValueEffect::Remove));
    assert_eq!(s.evaluate(&json!({})), Ok(ValueEffect::Absent));
}

#[test]
fn required_refuses_absent_and_null() {
    let s = spec(ValueTable {
        path: Some("$.a".into()),
        required: true,
        ..ValueTable::default()
    });
    assert!(s.evaluate(&json!({})).unwrap_err().contains("absent"));
    assert!(
        s.evaluate(&json!({"a": null}))
            .unwrap_err()
            .contains("null")
    );
}

#[test]
fn formats_unix_seconds_as_rfc3339() {
    let s = spec(ValueTable {
        path: Some("$.t".into()),
        format: Some("rfc3339".into()),
        ..ValueTable::default()
    });
    let out = s.evaluate(&json!({"t": 1771113600}));
    assert_eq!(out, Ok(ValueEffect::Set("2026-02-15T00:00:00Z".into())));
    assert!(s.evaluate(&json!({"t": "soon"})).is_err());
}

#[test]
fn joins_arrays_and_wildcards() {
    let join = |p: &str| {
        spec(ValueTable {
            path: Some(p.into()),
            join: Some(",".into()),
            ..ValueTable::default()
        })
    };
    let doc = json!({"a": ["x", 2, null], "l": [{"k": "p"}, {"k": "q"}], "e": []});
    assert_eq!(
        join("$.a").evaluate(&doc),
        Ok(ValueEffect::Set("x,2".into()))
    );
    assert_eq!(
        join("$.l[*].k").evaluate(&doc),
        Ok(ValueEffect::Set("p,q".into()))
    );
    assert_eq!(join("$.e[*].k").evaluate(&doc), Ok(ValueEffect::Remove));
    assert!(
        path_spec("$.l[*].k")
            .evaluate(&doc)
            .unwrap_err()
            .contains("2 values")
    );
}

#[test]
fn compile_refuses_bad_specs() {
    let both = ValueTable {
        path: Some("$.a".into()),
        value: Some("x".into()),
        ..ValueTable::default()
    };
    assert!(ValueSpec::compile(&ValueSpecConfig::Table(both)).is_err());
    let bad = ValueSpecConfig::Path("$.a[".into());
    assert!(
        ValueSpec::compile(&bad)
            .unwrap_err()
            .contains("bad JSONPath")
    );
    let fmt = ValueTable {
        path: Some("$.a".into()),
        format: Some("iso".into()),
        ..ValueTable::default()
    };
    assert!(ValueSpec::compile(&ValueSpecConfig::Table(fmt)).is_err());
}
