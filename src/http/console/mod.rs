//! The admin console under `/admin/ui/`: server-rendered HTML pages (askama templates in
//! `templates/console/`) over the same store the admin API reads. A login form exchanges
//! the admin token for an HttpOnly, `SameSite=Strict` session cookie ([`auth`]); every
//! state-changing request is a POST checked for its origin and a per-session CSRF token.
//! Mounted only when `ORGSYNC_ADMIN_TOKEN` is set, like the API.

mod auth;
mod diff;
mod events;
mod jobs;
mod overview;
mod replay;
mod session;
mod target;
mod views;

use std::sync::Arc;

use askama::Template;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::AppState;
use crate::store::StoreError;

pub use session::{LoginThrottle, Sessions};

/// Where the console lives; links and redirects are built from it.
pub const BASE: &str = "/admin/ui";

/// The console's routes under [`BASE`] (`/admin/ui/` is the overview; `/admin/ui` redirects
/// there). Each call makes its own session table.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            BASE,
            get(|| async { Redirect::permanent(&format!("{BASE}/")) }),
        )
        .route(&format!("{BASE}/"), get(overview::page))
        .route(
            &format!("{BASE}/login"),
            get(auth::login_form).post(auth::login),
        )
        .route(&format!("{BASE}/logout"), post(auth::logout))
        .route(&format!("{BASE}/events"), get(events::list))
        .route(&format!("{BASE}/events/{{id}}"), get(events::detail))
        .route(&format!("{BASE}/jobs"), get(jobs::list))
        .route(&format!("{BASE}/jobs/{{id}}/retry"), post(jobs::retry_one))
        .route(&format!("{BASE}/jobs/retry-dead"), post(jobs::retry_dead))
        .route(&format!("{BASE}/target"), get(target::page))
        .route(
            &format!("{BASE}/replay"),
            get(replay::form).post(replay::run),
        )
        .layer(Extension(Arc::new(Sessions::default())))
        .layer(Extension(Arc::new(LoginThrottle::default())))
        .layer(axum::middleware::map_response(harden))
}

/// Headers every console answer carries: no caching, no framing, no foreign resources.
async fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &str); 4] = [
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Why a console request failed; rendered as a small HTML page with the status.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No valid session: the browser is sent to the login form.
    #[error("please log in")]
    LoginRequired,
    /// A POST from another site, or without this session's form token.
    #[error("{0}")]
    Forbidden(String),
    /// A malformed filter or form value.
    #[error("{0}")]
    BadRequest(String),
    /// The event, job or page does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The job is in a state the operation does not apply to.
    #[error("{0}")]
    Conflict(String),
    /// Too many wrong tokens recently; try again later.
    #[error("too many login attempts; wait a minute and try again")]
    TooManyAttempts,
    /// The store failed; the cause is logged, not shown.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A template or task failed (a bug); the cause is logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The page shown for an error.
#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    status: u16,
    title: String,
    message: String,
    base: &'static str,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = match &self {
            ConsoleError::LoginRequired => {
                return Redirect::to(&format!("{BASE}/login")).into_response();
            }
            ConsoleError::Forbidden(_) => StatusCode::FORBIDDEN,
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::Conflict(_) => StatusCode::CONFLICT,
            ConsoleError::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            ConsoleError::Store(_) | ConsoleError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &self {
            ConsoleError::Store(e) => {
                tracing::error!(error = %e, "console request failed in the store");
                "The store failed; see the daemon's log.".to_owned()
            }
            ConsoleError::Internal(e) => {
                tracing::error!(error = %e, "console request failed");
                "Internal error; see the daemon's log.".to_owned()
            }
            other => other.to_string(),
        };
        let page = ErrorPage {
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            message,
            base: BASE,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, page.message).into_response(),
        }
    }
}

/// Renders a page template, or a 500 naming the failure in the log.
fn render(template: &impl Template) -> Result<Html<String>, ConsoleError> {
    template
        .render()
        .map(Html)
        .map_err(|e| ConsoleError::Internal(format!("rendering a page: {e}")))
}
