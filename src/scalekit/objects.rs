//! The organization and user shapes orgsync reads and writes, and their JSON on the wire:
//! bare snake_case request bodies, wrapped responses read tolerantly (absent, `null` and
//! empty values alike).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::model::ExternalId;

/// The parts of a Scalekit organization or user that orgsync uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalekitObject {
    /// Scalekit's id (`org_…`, `usr_…`), used for updates.
    pub id: String,
    /// The external id, when one is set.
    pub external_id: Option<String>,
    /// The complete current metadata map (a PATCH replaces it whole).
    pub metadata: BTreeMap<String, String>,
    /// The user's e-mail (users only), to confirm a reconciled user is the one meant.
    pub email: Option<String>,
    /// The Scalekit ids of the organizations a user is a member of (users only).
    pub memberships: Vec<String>,
}

/// A PATCH: only the present fields are sent, so absent ones stay unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectUpdate {
    /// The complete new metadata map, replacing the current one.
    pub metadata: Option<BTreeMap<String, String>>,
    /// A new external id for the object.
    pub external_id: Option<ExternalId>,
}

/// An organization to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrganization {
    /// Name shown in Scalekit (1–200 characters).
    pub display_name: String,
    /// The external id orgsync finds it by.
    pub external_id: ExternalId,
    /// Initial metadata.
    pub metadata: BTreeMap<String, String>,
}

/// A user to create in an organization, as a plain `member`, without an invitation e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// The user's e-mail (unique in the environment, cannot change later).
    pub email: String,
    /// The external id orgsync finds the user by.
    pub external_id: ExternalId,
    /// Initial metadata.
    pub metadata: BTreeMap<String, String>,
    /// Profile first name.
    pub first_name: Option<String>,
    /// Profile last name.
    pub last_name: Option<String>,
}

/// The bare PATCH body with only the present keys.
pub(crate) fn update_body(update: &ObjectUpdate) -> Value {
    let mut body = Map::new();
    if let Some(metadata) = &update.metadata {
        body.insert("metadata".into(), json!(metadata));
    }
    if let Some(external_id) = &update.external_id {
        body.insert("external_id".into(), json!(external_id.as_str()));
    }
    Value::Object(body)
}

/// The bare POST body for an organization.
pub(crate) fn organization_body(new: &NewOrganization) -> Value {
    let mut body = Map::new();
    body.insert("display_name".into(), json!(new.display_name));
    body.insert("external_id".into(), json!(new.external_id.as_str()));
    if !new.metadata.is_empty() {
        body.insert("metadata".into(), json!(new.metadata));
    }
    Value::Object(body)
}

/// The bare POST body for a user with a `member` membership.
pub(crate) fn user_body(new: &NewUser) -> Value {
    let mut body = Map::new();
    body.insert("email".into(), json!(new.email));
    body.insert("external_id".into(), json!(new.external_id.as_str()));
    if !new.metadata.is_empty() {
        body.insert("metadata".into(), json!(new.metadata));
    }
    let mut profile = Map::new();
    let names = [
        ("first_name", &new.first_name),
        ("last_name", &new.last_name),
    ];
    for (key, value) in names {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            profile.insert(key.into(), json!(value));
        }
    }
    if !profile.is_empty() {
        body.insert("user_profile".into(), Value::Object(profile));
    }
    body.insert(
        "membership".into(),
        json!({ "roles": [{ "name": "member" }] }),
    );
    Value::Object(body)
}

/// Reads `{"<wrapper>":{…}}` into a [`ScalekitObject`]; the error says what was wrong.
pub(crate) fn parse_object(body: &[u8], wrapper: &str) -> Result<ScalekitObject, String> {
    let json: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON ({e})"))?;
    let object = json
        .get(wrapper)
        .and_then(Value::as_object)
        .ok_or_else(|| format!("no {wrapper:?} object in the body"))?;
    let id = text(object, "id")?.ok_or_else(|| format!("the {wrapper} has no id"))?;
    Ok(ScalekitObject {
        id,
        external_id: text(object, "external_id")?,
        metadata: metadata(object.get("metadata"))?,
        email: text(object, "email")?,
        memberships: memberships(object.get("memberships"))?,
    })
}

/// The organization ids of a user's `memberships` (absent and `null` are none).
fn memberships(value: Option<&Value>) -> Result<Vec<String>, String> {
    let list = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(format!(
                "memberships is not an array but {}",
                crate::model::json_kind(other)
            ));
        }
    };
    let mut ids = Vec::with_capacity(list.len());
    for membership in list {
        let Some(membership) = membership.as_object() else {
            return Err("a membership is not an object".to_owned());
        };
        if let Some(id) = text(membership, "organization_id")? {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Reads a `{"users":[…],"next_page_token":"…"}` list: the users and the next page token
/// (`None` at the end).
pub(crate) fn parse_user_list(
    body: &[u8],
) -> Result<(Vec<ScalekitObject>, Option<String>), String> {
    let json: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON ({e})"))?;
    let object = json
        .as_object()
        .ok_or_else(|| "the body is not a JSON object".to_owned())?;
    let users = match object.get("users") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(users)) => users
            .iter()
            .map(|user| parse_object(json!({ "user": user }).to_string().as_bytes(), "user"))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(format!(
                "users is not an array but {}",
                crate::model::json_kind(other)
            ));
        }
    };
    Ok((users, text(object, "next_page_token")?))
}

/// An optional string field: absent, `null` and `""` are all `None`.
fn text(object: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "{key} is not a string but {}",
            crate::model::json_kind(other)
        )),
    }
}

/// A metadata map: absent and `null` are empty; every value must be a string.
fn metadata(value: Option<&Value>) -> Result<BTreeMap<String, String>, String> {
    let map = match value {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(format!(
                "metadata is not an object but {}",
                crate::model::json_kind(other)
            ));
        }
    };
    map.iter()
        .map(|(key, value)| match value {
            Value::String(s) => Ok((key.clone(), s.clone())),
            other => Err(format!(
                "metadata value of {key:?} is not a string but {}",
                crate::model::json_kind(other)
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eid(value: &str) -> ExternalId {
        ExternalId::parse(value).unwrap()
    }

    #[test]
    fn patch_bodies_carry_only_the_present_keys() {
        let metadata_only = ObjectUpdate {
            metadata: Some(BTreeMap::from([("plan".into(), "pro".into())])),
            external_id: None,
        };
        assert_eq!(
            update_body(&metadata_only),
            json!({"metadata":{"plan":"pro"}})
        );
        let relink = ObjectUpdate {
            metadata: None,
            external_id: Some(eid("CUST-2")),
        };
        assert_eq!(update_body(&relink), json!({"external_id":"CUST-2"}));
        let clear = ObjectUpdate {
            metadata: Some(BTreeMap::new()),
            external_id: None,
        };
        assert_eq!(update_body(&clear), json!({"metadata":{}}));
    }

    #[test]
    fn user_creation_asks_for_a_member_role_object() {
        let new = NewUser {
            email: "jane@acme.com".into(),
            external_id: eid("crm-42"),
            metadata: BTreeMap::new(),
            first_name: Some("Jane".into()),
            last_name: None,
        };
        assert_eq!(
            user_body(&new),
            json!({"email":"jane@acme.com","external_id":"crm-42",
                   "user_profile":{"first_name":"Jane"},
                   "membership":{"roles":[{"name":"member"}]}})
        );
    }

    #[test]
    fn responses_are_read_tolerantly() {
        let body = br#"{"organization":{"id":"org_1","external_id":"","metadata":null,"slug":7}}"#;
        let org = parse_object(body, "organization").unwrap();
        assert_eq!(
            (org.id.as_str(), org.external_id, org.metadata.len()),
            ("org_1", None, 0)
        );
        let body = br#"{"user":{"id":"usr_1","email":"a@b.c","metadata":{"plan":"pro"}}}"#;
        let user = parse_object(body, "user").unwrap();
        assert_eq!(user.email.as_deref(), Some("a@b.c"));
        assert_eq!(user.metadata["plan"], "pro");
    }

    #[test]
    fn non_string_metadata_and_missing_wrappers_are_errors() {
        let body = br#"{"organization":{"id":"org_1","metadata":{"seats":8}}}"#;
        let err = parse_object(body, "organization").unwrap_err();
        assert!(err.contains("\"seats\"") && err.contains("number"), "{err}");
        assert!(parse_object(br#"{"id":"org_1"}"#, "organization").is_err());
        assert!(parse_object(br#"{"organization":{"metadata":{}}}"#, "organization").is_err());
    }
}
