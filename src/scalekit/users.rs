//! Finding a user by e-mail (U6 `users:search`) and adding a user to an organization (U8),
//! for adopting a user who signed up before orgsync created them.

use reqwest::Method;
use serde_json::json;

use super::transport::{encode_segment, path_segment};
use super::{Operation, ScalekitClient, ScalekitError, ScalekitObject, objects};

/// Shortest and longest search query Scalekit accepts, in characters.
const QUERY_CHARS: std::ops::RangeInclusive<usize> = 3..=100;
/// The largest page `users:search` allows.
const PAGE_SIZE: usize = 30;
/// Pages read at most for one e-mail (a search matches substrings, so other users may
/// share a page with the one meant).
const MAX_PAGES: usize = 10;

impl ScalekitClient {
    /// The user whose e-mail is `email` (compared case-insensitively), through
    /// `GET /api/v1/users:search`; `Ok(None)` when there is none.
    pub async fn find_user_by_email(
        &self,
        email: &str,
    ) -> Result<Option<ScalekitObject>, ScalekitError> {
        let op = Operation::SearchUsers;
        if !QUERY_CHARS.contains(&email.chars().count()) {
            return Err(ScalekitError::InvalidInput {
                reason: format!(
                    "the e-mail {email:?} cannot be searched: it must have 3 to 100 characters"
                ),
            });
        }
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut path = format!(
                "/api/v1/users:search?query={}&page_size={PAGE_SIZE}",
                encode_segment(email)
            );
            if let Some(token) = &token {
                path.push_str(&format!("&page_token={}", encode_segment(token)));
            }
            let answer = self.inner.call(op, Method::GET, &path, None).await?;
            if !answer.status.is_success() {
                return Err(answer.into_error(op));
            }
            let (users, next) = objects::parse_user_list(&answer.body)
                .map_err(|reason| ScalekitError::InvalidResponse { op, reason })?;
            let found = users.into_iter().find(|u| {
                u.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            });
            if found.is_some() {
                return Ok(found);
            }
            match next {
                Some(next) => token = Some(next),
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Makes user `user_id` a `member` of organization `organization_id`, never sending an
    /// invitation e-mail.
    pub async fn add_membership(
        &self,
        organization_id: &str,
        user_id: &str,
    ) -> Result<ScalekitObject, ScalekitError> {
        let op = Operation::AddMembership;
        let org = path_segment("organization id", organization_id)?;
        let user = path_segment("user id", user_id)?;
        let path = format!(
            "/api/v1/memberships/organizations/{org}/users/{user}?send_invitation_email=false"
        );
        let body = json!({ "roles": [{ "name": "member" }] });
        let answer = self
            .inner
            .call(op, Method::POST, &path, Some(&body))
            .await?;
        if !answer.status.is_success() {
            return Err(answer.into_error(op));
        }
        objects::parse_object(&answer.body, "user")
            .map_err(|reason| ScalekitError::InvalidResponse { op, reason })
    }
}
