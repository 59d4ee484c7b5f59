//! The access-token cache (reference §2): cached until `expires_in − 60 s`, at most one
//! token request in flight, its result (token or failure) shared by every waiter, and a
//! generation number so a caller whose 401 came from an already-replaced token reuses the
//! new one instead of refreshing again.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::errors::{Operation, ScalekitError};

/// Lifetime assumed when the token response has no `expires_in`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// How long before its stated expiry a token is replaced.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// A token ready to use, with the generation that issued it.
#[derive(Clone)]
pub(crate) struct Token {
    /// The bearer token.
    pub(crate) value: SecretString,
    /// Which completed token request produced it (1, 2, …).
    pub(crate) generation: u64,
}

/// What the token endpoint returned.
pub(crate) struct Issued {
    /// The bearer token.
    pub(crate) value: SecretString,
    /// Seconds until it expires, if stated.
    pub(crate) expires_in: Option<u64>,
}

/// The outcome of one token request.
pub(crate) type Fetched = Result<Issued, ScalekitError>;

/// The cache; one per client, shared by its clones.
#[derive(Default)]
pub(crate) struct TokenCache {
    /// Held while a token request is in flight, which is what coalesces refreshes.
    state: Mutex<TokenState>,
    /// Completed token requests, successful or not; also the generation counter.
    completed: AtomicU64,
}

#[derive(Default)]
struct TokenState {
    /// The cached token and when to stop using it.
    current: Option<(Token, Instant)>,
    /// The failure of the latest token request, with its generation, for sharing.
    last_failure: Option<(u64, ScalekitError)>,
}

impl TokenCache {
    /// A token to call the API with: the cached one while it is fresh, else a new one from
    /// `fetch`.
    pub(crate) async fn current<F: Future<Output = Fetched>>(
        &self,
        fetch: impl FnOnce() -> F,
    ) -> Result<Token, ScalekitError> {
        self.obtain(None, fetch).await
    }

    /// A token to replace `stale`, which the API just refused with 401. If another caller
    /// has already replaced it, that replacement is returned without a new request.
    pub(crate) async fn refresh<F: Future<Output = Fetched>>(
        &self,
        stale: u64,
        fetch: impl FnOnce() -> F,
    ) -> Result<Token, ScalekitError> {
        self.obtain(Some(stale), fetch).await
    }

    async fn obtain<F: Future<Output = Fetched>>(
        &self,
        stale: Option<u64>,
        fetch: impl FnOnce() -> F,
    ) -> Result<Token, ScalekitError> {
        // Requests completed after this point were in flight while we waited: share them.
        let seen = self.completed.load(Ordering::Acquire);
        let mut state = self.state.lock().await;
        if let Some((token, until)) = &state.current
            && *until > Instant::now()
            && Some(token.generation) != stale
        {
            return Ok(token.clone());
        }
        if let Some((generation, error)) = &state.last_failure
            && *generation > seen
        {
            return Err(error.clone());
        }
        let result = fetch().await;
        let generation = self.completed.fetch_add(1, Ordering::AcqRel) + 1;
        match result {
            Ok(issued) => {
                let token = Token {
                    value: issued.value,
                    generation,
                };
                let until = Instant::now() + lifetime(issued.expires_in);
                state.current = Some((token.clone(), until));
                state.last_failure = None;
                Ok(token)
            }
            Err(error) => {
                state.last_failure = Some((generation, error.clone()));
                Err(error)
            }
        }
    }
}

/// How long to use a token that expires in `expires_in` seconds: 60 s less, or half its
/// life when it lives a minute or less.
fn lifetime(expires_in: Option<u64>) -> Duration {
    let stated = expires_in.map_or(DEFAULT_LIFETIME, Duration::from_secs);
    if stated > EXPIRY_MARGIN {
        stated - EXPIRY_MARGIN
    } else {
        stated / 2
    }
}

/// Reads a token response: `access_token` is required, `expires_in` may be a number, a
/// numeric string, or absent.
pub(crate) fn parse_token_response(body: &[u8]) -> Result<Issued, ScalekitError> {
    let invalid = |reason: &str| ScalekitError::InvalidResponse {
        op: Operation::Token,
        reason: reason.to_owned(),
    };
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| invalid("the body is not JSON"))?;
    let value = json
        .get("access_token")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("no access_token in the body"))?;
    let expires_in = match json.get("expires_in") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    };
    Ok(Issued {
        value: SecretString::from(value),
        expires_in,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use secrecy::ExposeSecret;

    use super::*;

    type FetchFuture = std::pin::Pin<Box<dyn Future<Output = Fetched> + Send>>;

    /// A fetch that counts calls and issues `tok<n>` after a short delay.
    fn counting(calls: &Arc<AtomicUsize>) -> impl FnOnce() -> FetchFuture {
        let calls = Arc::clone(calls);
        move || {
            Box::pin(async move {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(Issued {
                    value: SecretString::from(format!("tok{n}")),
                    expires_in: Some(86_399),
                })
            })
        }
    }

    #[tokio::test]
    async fn a_fresh_token_is_reused() {
        let cache = TokenCache::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let first = cache.current(counting(&calls)).await.unwrap();
        let second = cache.current(counting(&calls)).await.unwrap();
        assert_eq!(second.value.expose_secret(), first.value.expose_secret());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn concurrent_refreshes_of_the_same_token_make_one_request() {
        let cache = Arc::new(TokenCache::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let stale = cache.current(counting(&calls)).await.unwrap().generation;
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (cache, calls) = (Arc::clone(&cache), Arc::clone(&calls));
                tokio::spawn(async move { cache.refresh(stale, counting(&calls)).await })
            })
            .collect();
        for task in tasks {
            let token = task.await.unwrap().unwrap();
            assert_eq!(token.value.expose_secret(), "tok2");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_request_is_shared_by_its_waiters_then_retried() {
        let cache = Arc::new(TokenCache::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let failing = |calls: &Arc<AtomicUsize>| {
            let calls = Arc::clone(calls);
            move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Err::<Issued, _>(ScalekitError::Transport {
                    op: Operation::Token,
                    detail: "refused".into(),
                })
            }
        };
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let (cache, calls) = (Arc::clone(&cache), Arc::clone(&calls));
                tokio::spawn(async move { cache.current(failing(&calls)).await.is_err() })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // A later caller tries again.
        assert!(cache.current(counting(&calls)).await.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn lifetimes_keep_a_minute_of_margin() {
        assert_eq!(lifetime(Some(86_399)), Duration::from_secs(86_339));
        assert_eq!(lifetime(None), Duration::from_secs(3_540));
        assert_eq!(lifetime(Some(30)), Duration::from_secs(15));
    }

    #[test]
    fn token_responses_are_read_tolerantly() {
        let issued = parse_token_response(br#"{"access_token":"abc","expires_in":"120"}"#).unwrap();
        assert_eq!(issued.value.expose_secret(), "abc");
        assert_eq!(issued.expires_in, Some(120));
        let issued = parse_token_response(br#"{"access_token":"abc","expires_in":null}"#).unwrap();
        assert_eq!(issued.expires_in, None);
        assert!(parse_token_response(br#"{"token_type":"Bearer"}"#).is_err());
        assert!(parse_token_response(b"<html>").is_err());
    }
}
