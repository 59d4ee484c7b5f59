//! Request decoding and the validation rules of the reference: bare JSON bodies, no unknown
//! top-level keys, string-only metadata within the size limits (§3, §6).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

use crate::errors::ApiError;

/// Most metadata pairs on an organization.
pub const ORG_MAX_PAIRS: usize = 10;
/// Most metadata pairs on a user or a membership.
pub const USER_MAX_PAIRS: usize = 20;
/// Shortest and longest metadata key, in characters.
pub const KEY_CHARS: (usize, usize) = (3, 25);
/// Shortest and longest metadata value, in characters.
pub const VALUE_CHARS: (usize, usize) = (1, 256);

/// Decodes a request body that must be a bare JSON object sent as `application/json`.
pub fn json_object(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::invalid(format!(
            "Content-Type must be application/json, got {content_type:?}"
        )));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ApiError::invalid("request body must be a JSON object")),
        Err(err) => Err(ApiError::invalid(format!(
            "request body is not valid JSON: {err}"
        ))),
    }
}

/// Rejects keys outside `allowed` (this also rejects a wrapped `{"organization":{…}}` body).
pub fn no_unknown_keys(
    object: &Map<String, Value>,
    allowed: &[&str],
    what: &str,
) -> Result<(), ApiError> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(key) => Err(ApiError::invalid(format!(
            "unknown field {key:?} in {what}; allowed fields: {} (bodies are bare, snake_case)",
            allowed.join(", ")
        ))),
    }
}

/// Rejects any query string on routes that take none.
pub fn no_query(query: &Option<String>) -> Result<(), ApiError> {
    match query.as_deref() {
        None | Some("") => Ok(()),
        Some(q) => Err(ApiError::invalid(format!(
            "unexpected query parameters {q:?}"
        ))),
    }
}

/// The single path parameter, percent-decoded.
pub fn path_param(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    match path {
        Ok(Path(value)) => Ok(value),
        Err(rejection) => Err(ApiError::invalid(rejection.body_text())),
    }
}

/// Checks an id from the path: `prefix` (if any) and a length within `min..=max` chars.
pub fn path_id(id: &str, prefix: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let len = id.chars().count();
    if !id.starts_with(prefix) || len < min || len > max {
        return Err(ApiError::invalid(format!(
            "invalid id {id:?}: must start with {prefix:?} and be {min}-{max} characters"
        )));
    }
    Ok(())
}

/// An optional string field of `object`: absent → `None`; present, it must be a string of
/// `min..=max` chars. `null` is refused: omit a key instead of sending null.
pub fn string_field(
    object: &Map<String, Value>,
    key: &str,
    (min, max): (usize, usize),
    request: &str,
) -> Result<Option<String>, ApiError> {
    let Some(value) = object.get(key) else {
        return Ok(None);
    };
    let Value::String(s) = value else {
        let description = format!("must be a JSON string, got {}", kind(value));
        return Err(ApiError::violation(request, key, description, "string"));
    };
    let len = s.chars().count();
    if len < min {
        let description = format!("value length must be at least {min} characters");
        return Err(ApiError::violation(
            request,
            key,
            description,
            "string.min_len",
        ));
    }
    if len > max {
        let description = format!("value length must be at most {max} characters");
        return Err(ApiError::violation(
            request,
            key,
            description,
            "string.max_len",
        ));
    }
    Ok(Some(s.clone()))
}

/// A metadata map (`map<string,string>`): string values only, at most `max_pairs` pairs,
/// keys of 3–25 chars and values of 1–256 chars.
pub fn metadata(
    value: &Value,
    max_pairs: usize,
    field: &str,
    request: &str,
) -> Result<BTreeMap<String, String>, ApiError> {
    let Value::Object(object) = value else {
        let description = format!("must be a JSON object of strings, got {}", kind(value));
        return Err(ApiError::violation(request, field, description, "map"));
    };
    let mut map = BTreeMap::new();
    for (key, value) in object {
        let Value::String(text) = value else {
            let description = format!(
                "value of key {key:?} must be a JSON string, got {}",
                kind(value)
            );
            return Err(ApiError::violation(request, field, description, "string"));
        };
        check_len(request, field, "key", key, KEY_CHARS)?;
        check_len(request, field, "value", text, VALUE_CHARS).map_err(|mut err| {
            err.message.push_str(&format!(" (key {key:?})"));
            err
        })?;
        map.insert(key.clone(), text.clone());
    }
    max_pairs_ok(&map, max_pairs, field, request)?;
    Ok(map)
}

/// Refuses a map with more than `max_pairs` entries.
pub fn max_pairs_ok(
    map: &BTreeMap<String, String>,
    max_pairs: usize,
    field: &str,
    request: &str,
) -> Result<(), ApiError> {
    if map.len() > max_pairs {
        let description = format!("map must be at most {max_pairs} entries, got {}", map.len());
        return Err(ApiError::violation(
            request,
            field,
            description,
            "map.max_pairs",
        ));
    }
    Ok(())
}

/// Checks the length of a metadata key or value.
fn check_len(
    request: &str,
    field: &str,
    part: &str,
    text: &str,
    (min, max): (usize, usize),
) -> Result<(), ApiError> {
    let len = text.chars().count();
    if len < min {
        let description = format!("{part} length must be at least {min} characters: {text:?}");
        return Err(ApiError::violation(
            request,
            field,
            description,
            "string.min_len",
        ));
    }
    if len > max {
        let description = format!("{part} length must be at most {max} characters: {text:?}");
        return Err(ApiError::violation(
            request,
            field,
            description,
            "string.max_len",
        ));
    }
    Ok(())
}

/// The JSON type name of a value, for error messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_limits() {
        let ok = metadata(&json!({"plan": "pro"}), 10, "metadata", "R");
        assert_eq!(ok.map(|m| m.len()), Ok(1));
        for bad in [
            json!({"id": "x"}),
            json!({"a_key_of_twenty_six_chars_": "x"}),
            json!({"plan": ""}),
            json!({"plan": "x".repeat(257)}),
            json!({"seats": 8}),
            json!({"flag": null}),
            json!(["plan"]),
        ] {
            assert!(metadata(&bad, 10, "metadata", "R").is_err(), "{bad}");
        }
        let eleven: Map<String, Value> = (0..11).map(|i| (format!("key{i}"), json!("v"))).collect();
        let err = metadata(&Value::Object(eleven), 10, "metadata", "R");
        assert_eq!(
            err.map_err(|e| e.violations[0].constraint),
            Err("map.max_pairs")
        );
    }

    #[test]
    fn string_field_refuses_null_and_numbers() {
        let object = json!({"a": null, "b": 1, "c": "ok"});
        let Value::Object(object) = object else {
            return;
        };
        assert!(string_field(&object, "a", (1, 9), "R").is_err());
        assert!(string_field(&object, "b", (1, 9), "R").is_err());
        assert_eq!(
            string_field(&object, "c", (1, 9), "R"),
            Ok(Some("ok".into()))
        );
        assert_eq!(string_field(&object, "d", (1, 9), "R"), Ok(None));
    }
}
