//! The Scalekit management REST client: find organizations and users by external id,
//! update their metadata and external id, create them, and classify every failure so the
//! worker knows whether to retry, reconcile, re-resolve or give up.
//!
//! The wire contract is `shared/reference/scalekit-api.md`. Layout:
//! - `auth` caches the access token and coalesces refreshes;
//! - `transport` sends one call (URL building, 401 refresh-once, 429 pause);
//! - `errors` holds [`ScalekitError`] and its [`FailureClass`];
//! - `metadata` checks Scalekit's metadata limits ([`validate_metadata`]) before any request;
//! - `ratelimit` spaces requests and holds the pause; `objects` is the JSON.

mod auth;
mod errors;
mod metadata;
mod objects;
mod ratelimit;
mod transport;
mod users;

#[cfg(test)]
mod tests;

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use secrecy::SecretString;

use crate::clock::Clock;
use crate::model::{ExternalId, TargetKind};

pub use errors::{FailureClass, Operation, ScalekitError};
pub use metadata::{MetadataError, validate_metadata};
pub use objects::{NewOrganization, NewUser, ObjectUpdate, ScalekitObject};

use transport::{Inner, base_url, path_segment};

/// How to reach and authenticate to one Scalekit environment.
#[derive(Debug, Clone)]
pub struct ScalekitConfig {
    /// `SCALEKIT_ENVIRONMENT_URL`, e.g. `https://acme.scalekit.com` (no path).
    pub environment_url: String,
    /// `SCALEKIT_CLIENT_ID` (`skc_…`).
    pub client_id: String,
    /// `SCALEKIT_CLIENT_SECRET`; never logged.
    pub client_secret: SecretString,
    /// Limit for one HTTP request, connection to last byte.
    pub request_timeout: Duration,
    /// Client-side request rate, to stay under the account's Scalekit limit; `None` = no limit.
    pub requests_per_second: Option<NonZeroU32>,
    /// Longest `Retry-After` honoured; longer values are cut to this.
    pub max_retry_after: Duration,
}

/// A Scalekit client; cheap to clone, clones share the token, rate limit and pause.
#[derive(Clone)]
pub struct ScalekitClient {
    /// Shared state.
    inner: Arc<Inner>,
}

impl fmt::Debug for ScalekitClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScalekitClient")
            .field("environment_url", &self.inner.base)
            .field("client_id", &self.inner.client_id)
            .finish_non_exhaustive()
    }
}

/// The longest organization display name Scalekit accepts, in characters.
const DISPLAY_NAME_MAX: usize = 200;

impl ScalekitClient {
    /// Builds a client that paces itself by `clock`; fails when the environment URL is not a
    /// bare `http(s)://host[:port]`. Makes no request, and records no metrics (see
    /// [`ScalekitClient::with_metrics`]).
    pub fn new(config: ScalekitConfig, clock: Clock) -> Result<Self, ScalekitError> {
        Self::build(config, clock, None)
    }

    /// [`ScalekitClient::new`], counting every call in the app's `metrics`.
    pub fn with_metrics(
        config: ScalekitConfig,
        clock: Clock,
        metrics: Arc<crate::telemetry::Metrics>,
    ) -> Result<Self, ScalekitError> {
        Self::build(config, clock, Some(metrics))
    }

    fn build(
        config: ScalekitConfig,
        clock: Clock,
        metrics: Option<Arc<crate::telemetry::Metrics>>,
    ) -> Result<Self, ScalekitError> {
        let base = base_url(&config.environment_url)?;
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("orgsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ScalekitError::InvalidConfig {
                reason: format!("cannot set up the HTTP client: {e}"),
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                base,
                http,
                client_id: config.client_id,
                client_secret: config.client_secret,
                max_retry_after: config.max_retry_after,
                tokens: auth::TokenCache::default(),
                throttle: ratelimit::Throttle::new(config.requests_per_second, clock.clone()),
                clock,
                metrics,
            }),
        })
    }

    /// The clock this client paces itself by (readers spaced on top of it use it too).
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Finds an organization by external id; `Ok(None)` when Scalekit has none (404).
    pub async fn get_organization_by_external_id(
        &self,
        external_id: &ExternalId,
    ) -> Result<Option<ScalekitObject>, ScalekitError> {
        self.lookup(TargetKind::Organization, external_id).await
    }

    /// Updates an organization by Scalekit id; only the fields present in `update` change.
    pub async fn update_organization(
        &self,
        id: &str,
        update: &ObjectUpdate,
    ) -> Result<ScalekitObject, ScalekitError> {
        self.update(TargetKind::Organization, id, update).await
    }

    /// Creates an organization.
    pub async fn create_organization(
        &self,
        new: &NewOrganization,
    ) -> Result<ScalekitObject, ScalekitError> {
        let kind = TargetKind::Organization;
        validate_metadata(kind, &new.metadata)?;
        let name_len = new.display_name.trim().chars().count();
        if name_len == 0 || new.display_name.chars().count() > DISPLAY_NAME_MAX {
            return Err(ScalekitError::InvalidInput {
                reason: format!(
                    "organization display name {:?} must have 1 to {DISPLAY_NAME_MAX} characters",
                    new.display_name
                ),
            });
        }
        let body = objects::organization_body(new);
        let path = "/api/v1/organizations".to_owned();
        self.write(Operation::Create(kind), kind, Method::POST, path, &body)
            .await
    }

    /// Finds a user by external id (environment-wide); `Ok(None)` when Scalekit has none.
    pub async fn get_user_by_external_id(
        &self,
        external_id: &ExternalId,
    ) -> Result<Option<ScalekitObject>, ScalekitError> {
        self.lookup(TargetKind::User, external_id).await
    }

    /// Updates a user by Scalekit id; only the fields present in `update` change.
    pub async fn update_user(
        &self,
        id: &str,
        update: &ObjectUpdate,
    ) -> Result<ScalekitObject, ScalekitError> {
        self.update(TargetKind::User, id, update).await
    }

    /// Creates a user as a `member` of the organization with Scalekit id `organization_id`,
    /// never sending an invitation e-mail.
    pub async fn create_user(
        &self,
        organization_id: &str,
        new: &NewUser,
    ) -> Result<ScalekitObject, ScalekitError> {
        let kind = TargetKind::User;
        validate_metadata(kind, &new.metadata)?;
        if new.email.trim().is_empty() {
            return Err(ScalekitError::InvalidInput {
                reason: format!("user {} has no e-mail to create it with", new.external_id),
            });
        }
        let org = path_segment("organization id", organization_id)?;
        let path = format!("/api/v1/organizations/{org}/users?send_invitation_email=false");
        let body = objects::user_body(new);
        self.write(Operation::Create(kind), kind, Method::POST, path, &body)
            .await
    }

    /// Fetches an access token, proving the environment URL and credentials work
    /// (`orgsync doctor`).
    pub async fn check_credentials(&self) -> Result<(), ScalekitError> {
        let inner = &self.inner;
        inner.tokens.current(|| inner.fetch_token()).await?;
        Ok(())
    }

    /// GET by external id: 200 → the object, 404 → `None`.
    async fn lookup(
        &self,
        kind: TargetKind,
        external_id: &ExternalId,
    ) -> Result<Option<ScalekitObject>, ScalekitError> {
        let op = Operation::Lookup(kind);
        let segment = path_segment("external id", external_id.as_str())?;
        let path = format!("/api/v1/{}:external/{segment}", collection(kind));
        let answer = self.inner.call(op, Method::GET, &path, None).await?;
        if answer.status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(answer.into_error(op));
        }
        parse(op, kind, &answer.body).map(Some)
    }

    /// PATCH by Scalekit id, after checking the metadata limits.
    async fn update(
        &self,
        kind: TargetKind,
        id: &str,
        update: &ObjectUpdate,
    ) -> Result<ScalekitObject, ScalekitError> {
        if let Some(metadata) = &update.metadata {
            validate_metadata(kind, metadata)?;
        }
        let op = Operation::Update {
            kind,
            sets_external_id: update.external_id.is_some(),
        };
        let path = format!("/api/v1/{}/{}", collection(kind), path_segment("id", id)?);
        let body = objects::update_body(update);
        self.write(op, kind, Method::PATCH, path, &body).await
    }

    /// Sends a body and expects the object back with any 2xx.
    async fn write(
        &self,
        op: Operation,
        kind: TargetKind,
        method: Method,
        path: String,
        body: &serde_json::Value,
    ) -> Result<ScalekitObject, ScalekitError> {
        let answer = self.inner.call(op, method, &path, Some(body)).await?;
        if !answer.status.is_success() {
            return Err(answer.into_error(op));
        }
        parse(op, kind, &answer.body)
    }
}

/// The path collection of a kind.
fn collection(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Organization => "organizations",
        TargetKind::User => "users",
    }
}

/// Reads the wrapped object of a successful answer.
fn parse(op: Operation, kind: TargetKind, body: &[u8]) -> Result<ScalekitObject, ScalekitError> {
    let wrapper = match kind {
        TargetKind::Organization => "organization",
        TargetKind::User => "user",
    };
    objects::parse_object(body, wrapper)
        .map_err(|reason| ScalekitError::InvalidResponse { op, reason })
}
