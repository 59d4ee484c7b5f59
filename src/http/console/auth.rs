//! Console access: the login form, sessions, CSRF checks and logout.
//!
//! A correct admin token buys a random 256-bit session id, kept in memory with an expiry and
//! a second random value, the CSRF token, that every form carries in a hidden field. The
//! cookie is HttpOnly, `SameSite=Strict`, scoped to the console's path, and `Secure` when the
//! request came through HTTPS (a TLS-terminating proxy saying `X-Forwarded-Proto: https`);
//! over plain HTTP (loopback, tests) a `Secure` cookie would never be sent back, so it is
//! left off there. Every POST must also come from the console's own origin (`Origin`, else
//! `Referer`, must name the `Host` it was sent to). Wrong tokens are slowed down
//! process-wide by [`LoginThrottle`]. Sessions live in this process: a restart logs out.

use std::sync::Arc;

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Extension, Form, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::ExposeSecret;
use serde::Deserialize;
use tokio::time::Instant;

use super::session::{LoginThrottle, SESSION_TTL, Sessions, WRONG_TOKEN_DELAY};
use super::views::constant_eq;
use super::{BASE, ConsoleError, render};
use crate::http::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "orgsync_session";

/// A request from a logged-in browser; carries the session's CSRF token for its forms.
pub struct Session {
    /// The session id (from the cookie).
    id: String,
    /// The token every form of this session carries.
    pub csrf: String,
}

impl Session {
    /// Checks a state-changing request: same origin and this session's form token.
    pub fn check_post(&self, origin: &OriginCheck, csrf: &str) -> Result<(), ConsoleError> {
        origin.verify()?;
        if constant_eq(csrf, &self.csrf) {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(
                "this form has expired or did not come from this console; reload the page and try again"
                    .to_owned(),
            ))
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Session {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let sessions = sessions(parts)?;
        let id = cookie(&parts.headers, COOKIE).ok_or(ConsoleError::LoginRequired)?;
        let csrf = sessions
            .csrf(&id, Instant::now())
            .ok_or(ConsoleError::LoginRequired)?;
        Ok(Session { id, csrf })
    }
}

fn sessions(parts: &Parts) -> Result<Arc<Sessions>, ConsoleError> {
    parts
        .extensions
        .get::<Arc<Sessions>>()
        .cloned()
        .ok_or_else(|| ConsoleError::Internal("the console's session table is missing".into()))
}

/// Whether the request came from the console's own origin (checked when used): the
/// refusal's message, if not.
pub struct OriginCheck(Option<String>);

impl OriginCheck {
    /// Refuses a request from another origin.
    pub fn verify(&self) -> Result<(), ConsoleError> {
        match &self.0 {
            None => Ok(()),
            Some(why) => Err(ConsoleError::Forbidden(why.clone())),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for OriginCheck {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(OriginCheck(same_origin(&parts.headers).err()))
    }
}

/// `Origin` (else `Referer`) must name the host the request was sent to; `Origin: null`
/// (sandboxed frames, `data:` pages) is refused. A request with neither (not a browser)
/// still needs the session cookie and the form token.
fn same_origin(headers: &HeaderMap) -> Result<(), String> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let claimed = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .map(|v| v.to_str().unwrap_or("null"));
    let Some(claimed) = claimed else {
        return Ok(());
    };
    let authority = claimed
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or_default());
    match (authority, host) {
        (Some(a), Some(h)) if a.eq_ignore_ascii_case(h) => Ok(()),
        _ => Err(format!(
            "cross-site request refused: this form was sent from {claimed}, not from the console"
        )),
    }
}

/// A cookie's value from the `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Whether the browser reached us through HTTPS (a proxy in front terminates TLS).
fn over_https(headers: &HeaderMap) -> bool {
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let forwarded = headers
        .get(header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("proto=https"));
    proto || forwarded
}

/// The `Set-Cookie` value for a session id (empty with `max_age` 0 to clear it).
fn set_cookie(value: &str, max_age: u64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path={BASE}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .ok()
}

/// The login page.
#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    base: &'static str,
    error: Option<String>,
}

/// `GET /admin/ui/login`: the form (or the overview when already logged in).
pub async fn login_form(session: Result<Session, ConsoleError>) -> Result<Response, ConsoleError> {
    if session.is_ok() {
        return Ok(Redirect::to(&format!("{BASE}/")).into_response());
    }
    let page = LoginPage {
        base: BASE,
        error: None,
    };
    Ok(render(&page)?.into_response())
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// The admin token, as typed.
    token: String,
}

/// `POST /admin/ui/login`: a correct token starts a session; a wrong one is held back.
pub async fn login(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    Extension(sessions): Extension<Arc<Sessions>>,
    Extension(throttle): Extension<Arc<LoginThrottle>>,
    origin: OriginCheck,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, ConsoleError> {
    origin.verify()?;
    let Form(form) = form.map_err(|e| ConsoleError::BadRequest(e.body_text()))?;
    let Some(expected) = &state.admin_token else {
        return Err(ConsoleError::NotFound("the console is off".into()));
    };
    tokio::time::sleep_until(throttle.reserve(Instant::now())?).await;
    if !constant_eq(form.token.trim(), expected.expose_secret()) {
        throttle.failed(Instant::now());
        tracing::warn!("console login refused: wrong admin token");
        tokio::time::sleep(WRONG_TOKEN_DELAY).await;
        let page = LoginPage {
            base: BASE,
            error: Some("That is not the admin token (ORGSYNC_ADMIN_TOKEN).".into()),
        };
        return Ok((axum::http::StatusCode::UNAUTHORIZED, render(&page)?).into_response());
    }
    let id = sessions.create(Instant::now());
    tracing::info!("console login");
    let mut response = Redirect::to(&format!("{BASE}/")).into_response();
    let cookie = set_cookie(&id, SESSION_TTL.as_secs(), over_https(&headers))
        .ok_or_else(|| ConsoleError::Internal("a session cookie is not a header value".into()))?;
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

/// A form that only carries the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    /// This session's form token.
    csrf: String,
}

/// `POST /admin/ui/logout`: ends the session and clears the cookie.
pub async fn logout(
    session: Session,
    Extension(sessions): Extension<Arc<Sessions>>,
    origin: OriginCheck,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, ConsoleError> {
    let Form(form) = form.map_err(|e| ConsoleError::BadRequest(e.body_text()))?;
    session.check_post(&origin, &form.csrf)?;
    sessions.remove(&session.id);
    let mut response = Redirect::to(&format!("{BASE}/login")).into_response();
    if let Some(cookie) = set_cookie("", 0, over_https(&headers)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn only_the_consoles_own_origin_may_post() {
        let ok = |pairs| same_origin(&headers(pairs)).is_ok();
        assert!(ok(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ]));
        assert!(ok(&[
            ("host", "ops.example"),
            ("referer", "https://ops.example/admin/ui/jobs")
        ]));
        assert!(ok(&[("host", "127.0.0.1:8080")]));
        assert!(!ok(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:9")
        ]));
        assert!(!ok(&[("host", "127.0.0.1:8080"), ("origin", "null")]));
        assert!(!ok(&[
            ("host", "ops.example"),
            ("referer", "https://evil.example/ops.example")
        ]));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; orgsync_session=abc; b=2")]);
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers(&[]), COOKIE), None);
    }

    #[test]
    fn cookies_are_secure_only_behind_https() {
        let plain = set_cookie("x", 10, false).unwrap();
        let plain = plain.to_str().unwrap();
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
        assert!(!plain.contains("Secure"));
        assert!(
            set_cookie("x", 10, true)
                .unwrap()
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
        assert!(over_https(&headers(&[("x-forwarded-proto", "https")])));
        assert!(!over_https(&headers(&[])));
    }
}
