//! U6: `GET /api/v1/users:search` (environment-wide) and
//! `GET /api/v1/organizations/{organization_id}/users:search` (reference §5): `query` of
//! 3–100 characters matched case-insensitively against e-mail, external id and names;
//! `page_size` 1–30 (default 10); an opaque `page_token`; the list shape of U5.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::state::{Inner, Shared, UserRecord, lock};
use crate::{user_body, validate};

/// Request message name, for validation messages.
const SEARCH: &str = "SearchUsersRequest";
/// The largest page the reference allows.
const MAX_PAGE_SIZE: usize = 30;
/// The page size when none is asked for.
const DEFAULT_PAGE_SIZE: usize = 10;

/// The search routes.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/users:search", get(search_environment))
        .route(
            "/api/v1/organizations/{id}/users:search",
            get(search_organization),
        )
}

/// The validated query string.
struct SearchQuery {
    /// The text to look for, lower-cased.
    needle: String,
    /// Users per page.
    page_size: usize,
    /// Users to skip (from the page token).
    offset: usize,
}

/// Users of the whole environment.
async fn search_environment(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let query = parse_query(query.as_deref())?;
    let inner = lock(&shared);
    Ok(page(&inner, &query, |_| true))
}

/// Users with a membership in one organization.
async fn search_organization(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
    path: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let org_id = validate::path_param(path)?;
    validate::path_id(&org_id, "org_", 1, 32)?;
    let query = parse_query(query.as_deref())?;
    let inner = lock(&shared);
    if !inner.orgs.contains_key(&org_id) {
        return Err(ApiError::not_found(format!(
            "organization {org_id:?} not found"
        )));
    }
    Ok(page(&inner, &query, |u| {
        u.memberships.iter().any(|m| m.organization_id == org_id)
    }))
}

/// One page of the users `keep` admits that match the query, in creation order.
fn page(
    inner: &Inner,
    query: &SearchQuery,
    keep: impl Fn(&UserRecord) -> bool,
) -> (StatusCode, Json<Value>) {
    let matching: Vec<&UserRecord> = inner
        .users
        .values()
        .filter(|u| keep(u) && matches(u, &query.needle))
        .collect();
    let users: Vec<Value> = matching
        .iter()
        .skip(query.offset)
        .take(query.page_size)
        .map(|u| user_body::user_json(u, &inner.environment_id))
        .collect();
    let next = query.offset + query.page_size;
    let next_page_token = if next < matching.len() {
        format!("off_{next}")
    } else {
        String::new()
    };
    let prev_page_token = match query.offset {
        0 => String::new(),
        n => format!("off_{}", n.saturating_sub(query.page_size)),
    };
    let body = json!({"users": users, "next_page_token": next_page_token,
                      "prev_page_token": prev_page_token, "total_size": matching.len()});
    (StatusCode::OK, Json(body))
}

/// Whether the user's e-mail, external id or a profile name contains `needle`.
fn matches(user: &UserRecord, needle: &str) -> bool {
    let names = ["first_name", "last_name", "name"]
        .into_iter()
        .filter_map(|k| user.profile.strings.get(k));
    std::iter::once(&user.email)
        .chain(user.external_id.as_ref())
        .chain(names)
        .any(|text| text.to_lowercase().contains(needle))
}

/// `query` (required, 3–100 characters), `page_size` (1–30) and `page_token`; nothing else.
fn parse_query(raw: Option<&str>) -> Result<SearchQuery, ApiError> {
    let (mut needle, mut page_size, mut offset) = (None, DEFAULT_PAGE_SIZE, 0);
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode(value)?;
        match key {
            "query" => needle = Some(value),
            "page_size" => page_size = page_size_value(&value)?,
            "page_token" if value.is_empty() => offset = 0,
            "page_token" => offset = token_offset(&value)?,
            other => {
                return Err(ApiError::invalid(format!(
                    "unexpected query parameter {other:?}"
                )));
            }
        }
    }
    let needle = needle.unwrap_or_default();
    let len = needle.chars().count();
    if !(3..=100).contains(&len) {
        return Err(ApiError::violation(
            SEARCH,
            "query",
            format!("value length must be between 3 and 100 characters, got {len}"),
            "string.len",
        ));
    }
    Ok(SearchQuery {
        needle: needle.to_lowercase(),
        page_size,
        offset,
    })
}

/// `page_size`: a number from 1 to 30 (0 means the default).
fn page_size_value(value: &str) -> Result<usize, ApiError> {
    match value.parse::<usize>() {
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(n) if n <= MAX_PAGE_SIZE => Ok(n),
        _ => Err(ApiError::violation(
            SEARCH,
            "page_size",
            format!("value must be less than or equal to {MAX_PAGE_SIZE}, got {value:?}"),
            "uint32.lte",
        )),
    }
}

/// The offset behind a page token this stand-in issued.
fn token_offset(token: &str) -> Result<usize, ApiError> {
    token
        .strip_prefix("off_")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ApiError::invalid(format!("invalid page token {token:?}")))
}

/// Percent-decodes a query value (`+` is a space, as in forms).
fn decode(value: &str) -> Result<String, ApiError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = value.get(i + 1..i + 3).unwrap_or("");
                let byte = u8::from_str_radix(hex, 16)
                    .map_err(|_| ApiError::invalid(format!("bad percent-encoding in {value:?}")))?;
                out.push(byte);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| ApiError::invalid(format!("{value:?} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_decoded_and_bounded() {
        let q = parse_query(Some("query=Jane%2Bx%40Acme.com&page_size=30")).unwrap();
        assert_eq!((q.needle.as_str(), q.page_size), ("jane+x@acme.com", 30));
        assert!(parse_query(Some("query=ab")).is_err());
        assert!(parse_query(None).is_err());
        assert!(parse_query(Some("query=abc&page_size=31")).is_err());
        assert!(parse_query(Some("query=abc&page_token=zz")).is_err());
        assert!(parse_query(Some("query=abc&x=1")).is_err());
        assert_eq!(
            parse_query(Some("query=abc&page_token=off_4"))
                .unwrap()
                .offset,
            4
        );
    }
}
