//! The pieces of user request bodies (profile, membership, query) and the user JSON (§5).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::errors::ApiError;
use crate::rfc3339;
use crate::state::{Membership, Profile, UserRecord};
use crate::validate::{self, USER_MAX_PAIRS};

/// Profile string fields the API accepts.
const PROFILE_STRINGS: &[&str] = &[
    "first_name",
    "last_name",
    "name",
    "locale",
    "phone_number",
    "picture",
    "given_name",
    "family_name",
    "preferred_username",
    "gender",
];
/// Profile string fields always present in responses (`""` when unset).
const PROFILE_ALWAYS: &[&str] = &["first_name", "last_name", "name", "locale", "phone_number"];

/// The `user_profile` fields present in a request, validated.
#[derive(Debug, Default)]
pub struct ProfilePatch {
    /// String fields to set.
    strings: BTreeMap<String, String>,
    /// New `user_profile.metadata`; `None` also for `{}` (unchanged).
    metadata: Option<BTreeMap<String, String>>,
    /// New `user_profile.custom_attributes`; `None` also for `{}`.
    custom_attributes: Option<BTreeMap<String, String>>,
}

impl ProfilePatch {
    /// Validates `object["user_profile"]`, if present.
    pub fn parse(object: &Map<String, Value>, request: &str) -> Result<Self, ApiError> {
        let Some(value) = object.get("user_profile") else {
            return Ok(Self::default());
        };
        let Value::Object(profile) = value else {
            let description = format!("must be an object, got {}", validate::kind(value));
            return Err(ApiError::violation(
                request,
                "user_profile",
                description,
                "message",
            ));
        };
        let mut allowed = PROFILE_STRINGS.to_vec();
        allowed.extend(["metadata", "custom_attributes"]);
        validate::no_unknown_keys(profile, &allowed, "user_profile")?;
        let mut patch = Self::default();
        for key in PROFILE_STRINGS {
            if let Some(s) = validate::string_field(profile, key, (0, usize::MAX), request)? {
                patch.strings.insert((*key).to_owned(), s);
            }
        }
        if let Some(value) = profile.get("metadata") {
            let map = validate::metadata(value, USER_MAX_PAIRS, "user_profile.metadata", request)?;
            patch.metadata = (!map.is_empty()).then_some(map);
        }
        if let Some(value) = profile.get("custom_attributes") {
            let map = string_map(value, "user_profile.custom_attributes", request)?;
            patch.custom_attributes = (!map.is_empty()).then_some(map);
        }
        Ok(patch)
    }

    /// Writes the present fields into `profile`.
    pub fn apply(self, profile: &mut Profile) {
        profile.strings.extend(self.strings);
        if let Some(metadata) = self.metadata {
            profile.metadata = metadata;
        }
        if let Some(custom_attributes) = self.custom_attributes {
            profile.custom_attributes = custom_attributes;
        }
    }
}

/// Validates `object["membership"]` of a create request: `{"roles":[{"name":…}],"metadata":{…}}`.
pub fn membership(
    object: &Map<String, Value>,
    organization_id: &str,
    invited: bool,
    request: &str,
) -> Result<Membership, ApiError> {
    let mut membership = Membership {
        organization_id: organization_id.to_owned(),
        membership_status: if invited { "PENDING_INVITE" } else { "ACTIVE" }.to_owned(),
        roles: Vec::new(),
        metadata: BTreeMap::new(),
    };
    let Some(value) = object.get("membership") else {
        return Ok(membership);
    };
    let Value::Object(body) = value else {
        let description = format!("must be an object, got {}", validate::kind(value));
        return Err(ApiError::violation(
            request,
            "membership",
            description,
            "message",
        ));
    };
    validate::no_unknown_keys(body, &["roles", "metadata"], "membership")?;
    if let Some(value) = body.get("metadata") {
        membership.metadata =
            validate::metadata(value, USER_MAX_PAIRS, "membership.metadata", request)?;
    }
    if let Some(roles) = body.get("roles") {
        membership.roles = role_names(roles)?;
    }
    Ok(membership)
}

/// Role names from `[{"name":"member"}]`; bare strings fail to decode, as on the wire.
fn role_names(roles: &Value) -> Result<Vec<String>, ApiError> {
    let Value::Array(roles) = roles else {
        return Err(ApiError::invalid(
            "membership.roles must be an array of role objects",
        ));
    };
    roles
        .iter()
        .enumerate()
        .map(|(i, role)| {
            let name = match role {
                Value::Object(role) => {
                    validate::no_unknown_keys(role, &["id", "name", "display_name"], "a role")?;
                    role.get("name").and_then(Value::as_str).unwrap_or("")
                }
                _ => "",
            };
            if name.is_empty() {
                return Err(ApiError::invalid(format!(
                    "membership.roles[{i}] must be an object with a non-empty name, like \
                     {{\"name\":\"member\"}}; got {role}"
                )));
            }
            Ok(name.to_owned())
        })
        .collect()
}

/// `send_invitation_email` from the U4 query (default true); other parameters are refused.
pub fn send_invitation_email(query: Option<&str>) -> Result<bool, ApiError> {
    let mut send = true;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "send_invitation_email" {
            return Err(ApiError::invalid(format!(
                "unexpected query parameter {key:?}"
            )));
        }
        send = match value {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
            "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
            other => {
                return Err(ApiError::invalid(format!(
                    "send_invitation_email must be true or false, got {other:?}"
                )));
            }
        };
    }
    Ok(send)
}

/// A `map<string,string>` without Scalekit's metadata length rules.
fn string_map(
    value: &Value,
    field: &str,
    request: &str,
) -> Result<BTreeMap<String, String>, ApiError> {
    let Value::Object(object) = value else {
        let description = format!(
            "must be an object of strings, got {}",
            validate::kind(value)
        );
        return Err(ApiError::violation(request, field, description, "map"));
    };
    object
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => {
                let description = format!(
                    "value of {k:?} must be a string, got {}",
                    validate::kind(other)
                );
                Err(ApiError::violation(request, field, description, "string"))
            }
        })
        .collect()
}

/// The user object of §5 (unwrapped).
pub fn user_json(user: &UserRecord, environment_id: &str) -> Value {
    let memberships: Vec<Value> = user
        .memberships
        .iter()
        .map(|m| {
            let roles: Vec<Value> = m
                .roles
                .iter()
                .map(|r| json!({"name": r, "display_name": title(r)}))
                .collect();
            json!({"organization_id": m.organization_id, "membership_status": m.membership_status,
                   "roles": roles, "metadata": m.metadata, "name": "", "display_name": ""})
        })
        .collect();
    let mut profile = json!({
        "id": user.profile.id, "email_verified": false,
        "metadata": user.profile.metadata, "custom_attributes": user.profile.custom_attributes,
    });
    for key in PROFILE_ALWAYS {
        profile[*key] = json!("");
    }
    for (key, value) in &user.profile.strings {
        profile[key.as_str()] = json!(value);
    }
    let mut u = json!({
        "id": user.id, "environment_id": environment_id,
        "create_time": rfc3339::format(user.create_time),
        "update_time": rfc3339::format(user.update_time),
        "email": user.email, "metadata": user.metadata,
        "memberships": memberships, "user_profile": profile,
    });
    if let Some(external_id) = &user.external_id {
        u["external_id"] = json!(external_id);
    }
    u
}

/// `admin` → `Admin`, for role display names.
fn title(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitation_query() {
        assert_eq!(send_invitation_email(None), Ok(true));
        assert_eq!(
            send_invitation_email(Some("send_invitation_email=false")),
            Ok(false)
        );
        assert!(send_invitation_email(Some("send_invitation_email=no")).is_err());
        assert!(send_invitation_email(Some("x=1")).is_err());
    }

    #[test]
    fn roles_must_be_objects() {
        assert_eq!(
            role_names(&json!([{"name": "member"}])),
            Ok(vec!["member".to_owned()])
        );
        assert!(role_names(&json!(["member"])).is_err());
        assert!(role_names(&json!([{"nom": "member"}])).is_err());
    }
}
