//! Organization operations O1–O4 and O7 (reference §4), with §6 update semantics.

use std::collections::BTreeMap;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::errors::ApiError;
use crate::rfc3339;
use crate::state::{Inner, Organization, Shared, lock};
use crate::validate::{self, ORG_MAX_PAIRS};

/// Request message names, for validation messages.
const CREATE: &str = "CreateOrganizationRequest.Organization";
/// See [`CREATE`].
const UPDATE: &str = "UpdateOrganizationRequest.Organization";
/// Keys a PATCH body may carry.
const UPDATE_KEYS: &[&str] = &[
    "display_name",
    "external_id",
    "metadata",
    "slug",
    "logo_url",
];
/// Keys a POST body may carry.
const CREATE_KEYS: &[&str] = &[
    "display_name",
    "external_id",
    "metadata",
    "slug",
    "logo_url",
    "region_code",
];

/// Reply type of every handler here.
type Reply = Result<(StatusCode, Json<Value>), ApiError>;

/// The organization routes.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/organizations", post(create))
        .route("/api/v1/organizations:external/", get(external_id_required))
        .route(
            "/api/v1/organizations:external/{external_id}",
            get(get_by_external_id),
        )
        .route(
            "/api/v1/organizations/{id}",
            get(get_by_id).patch(update).delete(delete),
        )
}

/// `{"organization":{…}}` with every set field, `metadata` always present.
pub fn org_json(org: &Organization) -> Value {
    let mut o = json!({
        "id": org.id,
        "create_time": rfc3339::format(org.create_time),
        "update_time": rfc3339::format(org.update_time),
        "display_name": org.display_name,
        "region_code": org.region_code,
        "metadata": org.metadata,
    });
    for (key, value) in [
        ("external_id", &org.external_id),
        ("slug", &org.slug),
        ("logo_url", &org.logo_url),
    ] {
        if let Some(value) = value {
            o[key] = json!(value);
        }
    }
    o
}

/// Wraps an organization into a 2xx reply.
fn wrapped(status: StatusCode, org: &Organization) -> Reply {
    Ok((status, Json(json!({"organization": org_json(org)}))))
}

/// `GET /api/v1/organizations:external/` with an empty external id.
async fn external_id_required() -> ApiError {
    ApiError::invalid("ExternalId is required")
}

/// O1: the main lookup; 404 (code 5) when no organization has the external id.
async fn get_by_external_id(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
    path: Result<Path<String>, PathRejection>,
) -> Reply {
    validate::no_query(&query)?;
    let external_id = validate::path_param(path)?;
    let inner = lock(&shared);
    match inner.org_by_external_id(&external_id) {
        Some(org) => wrapped(StatusCode::OK, org),
        None => Err(ApiError::not_found(format!(
            "organization with external_id {external_id:?} not found"
        ))),
    }
}

/// O2: get by id.
async fn get_by_id(
    State(shared): State<Shared>,
    path: Result<Path<String>, PathRejection>,
) -> Reply {
    let id = checked_id(path)?;
    let inner = lock(&shared);
    wrapped(StatusCode::OK, find(&inner, &id)?)
}

/// O4: create; 201 with the new organization.
async fn create(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Reply {
    let object = validate::json_object(&headers, &body)?;
    validate::no_unknown_keys(&object, CREATE_KEYS, "the organization")?;
    let Some(display_name) = validate::string_field(&object, "display_name", (1, 200), CREATE)?
    else {
        return Err(ApiError::violation(
            CREATE,
            "display_name",
            "value is required",
            "required",
        ));
    };
    let fields = UpdateFields::parse(&object, CREATE)?;
    let region_code = validate::string_field(&object, "region_code", (2, 2), CREATE)?;
    if region_code
        .as_deref()
        .is_some_and(|r| r != "US" && r != "EU")
    {
        return Err(ApiError::violation(
            CREATE,
            "region_code",
            "must be US or EU",
            "enum",
        ));
    }
    let mut inner = lock(&shared);
    if let Some(external_id) = &fields.external_id {
        check_unique(&inner, external_id, None)?;
    }
    let metadata = fields.metadata.clone().unwrap_or_default();
    let id = inner.insert_org(display_name, fields.external_id.clone(), metadata);
    let Some(org) = inner.orgs.get_mut(&id) else {
        return Err(ApiError::not_found(format!("organization {id:?} vanished")));
    };
    fields.apply(org, false);
    if let Some(region_code) = region_code {
        org.region_code = region_code;
    }
    wrapped(StatusCode::CREATED, org)
}

/// O3: PATCH sets only the keys present; `metadata` replaces the map (or merges, by switch).
async fn update(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Reply {
    let id = checked_id(path)?;
    validate::no_query(&query)?;
    let object = validate::json_object(&headers, &body)?;
    validate::no_unknown_keys(&object, UPDATE_KEYS, "the organization")?;
    let display_name = validate::string_field(&object, "display_name", (1, 200), UPDATE)?;
    let fields = UpdateFields::parse(&object, UPDATE)?;
    let mut inner = lock(&shared);
    find(&inner, &id)?;
    if let Some(external_id) = &fields.external_id {
        check_unique(&inner, external_id, Some(&id))?;
    }
    let merge = inner.merge_metadata;
    let Some(org) = inner.orgs.get_mut(&id) else {
        return Err(ApiError::not_found(format!(
            "organization {id:?} not found"
        )));
    };
    if let Some(patch) = fields.metadata.as_ref().filter(|_| merge) {
        let mut merged = org.metadata.clone();
        merged.extend(patch.clone());
        validate::max_pairs_ok(&merged, ORG_MAX_PAIRS, "metadata", UPDATE)?;
    }
    if let Some(display_name) = display_name {
        org.display_name = display_name;
    }
    fields.apply(org, merge);
    org.update_time = SystemTime::now();
    wrapped(StatusCode::OK, org)
}

/// O7: delete; `{}`. Memberships in the organization go with it.
async fn delete(State(shared): State<Shared>, path: Result<Path<String>, PathRejection>) -> Reply {
    let id = checked_id(path)?;
    let mut inner = lock(&shared);
    if inner.orgs.remove(&id).is_none() {
        return Err(ApiError::not_found(format!(
            "organization {id:?} not found"
        )));
    }
    for user in inner.users.values_mut() {
        user.memberships.retain(|m| m.organization_id != id);
    }
    Ok((StatusCode::OK, Json(json!({}))))
}

/// The settable fields shared by create and update, validated.
struct UpdateFields {
    /// New external id (1–255 chars).
    external_id: Option<String>,
    /// New metadata map.
    metadata: Option<BTreeMap<String, String>>,
    /// New slug; `""` clears it.
    slug: Option<String>,
    /// New logo URL; `""` clears it.
    logo_url: Option<String>,
}

impl UpdateFields {
    /// Validates the fields present in `object`.
    fn parse(object: &Map<String, Value>, request: &str) -> Result<Self, ApiError> {
        let metadata = match object.get("metadata") {
            Some(value) => Some(validate::metadata(
                value,
                ORG_MAX_PAIRS,
                "metadata",
                request,
            )?),
            None => None,
        };
        let logo_url = validate::string_field(object, "logo_url", (0, 1024), request)?;
        if logo_url
            .as_deref()
            .is_some_and(|u| !u.is_empty() && !u.starts_with("https://"))
        {
            let description = "must be an https:// URL";
            return Err(ApiError::violation(
                request,
                "logo_url",
                description,
                "string.prefix",
            ));
        }
        Ok(Self {
            external_id: validate::string_field(object, "external_id", (1, 255), request)?,
            metadata,
            slug: validate::string_field(object, "slug", (0, 255), request)?,
            logo_url,
        })
    }

    /// Writes the present fields into `org`.
    fn apply(&self, org: &mut Organization, merge_metadata: bool) {
        if let Some(external_id) = &self.external_id {
            org.external_id = Some(external_id.clone());
        }
        if let Some(metadata) = &self.metadata {
            if merge_metadata {
                org.metadata.extend(metadata.clone());
            } else {
                org.metadata = metadata.clone();
            }
        }
        if let Some(slug) = &self.slug {
            org.slug = (!slug.is_empty()).then(|| slug.clone());
        }
        if let Some(logo_url) = &self.logo_url {
            org.logo_url = (!logo_url.is_empty()).then(|| logo_url.clone());
        }
    }
}

/// The organization id from the path, 1–32 chars.
fn checked_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let id = validate::path_param(path)?;
    validate::path_id(&id, "", 1, 32)?;
    Ok(id)
}

/// The organization with `id`, or 404.
fn find<'a>(inner: &'a Inner, id: &str) -> Result<&'a Organization, ApiError> {
    inner
        .orgs
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("organization {id:?} not found")))
}

/// Refuses an external id another organization already has.
fn check_unique(inner: &Inner, external_id: &str, own_id: Option<&str>) -> Result<(), ApiError> {
    match inner.org_by_external_id(external_id) {
        Some(other) if Some(other.id.as_str()) != own_id => Err(ApiError::duplicate(
            inner.duplicate_status,
            format!("organization with external_id {external_id:?} already exists"),
        )),
        _ => Ok(()),
    }
}
