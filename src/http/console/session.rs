//! The console's in-memory sessions and the process-wide login throttle.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rand::RngExt;
use tokio::time::Instant;

use super::ConsoleError;

/// How long a session lasts after login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// The most sessions kept at once; the one expiring first makes room.
const MAX_SESSIONS: usize = 256;
/// The least time between two login checks, process-wide.
const LOGIN_SPACING: Duration = Duration::from_millis(250);
/// How long a wrong token's answer is held back, and pushes later attempts back.
pub const WRONG_TOKEN_DELAY: Duration = Duration::from_secs(1);
/// Attempts queued further ahead than this are refused outright (429).
const MAX_QUEUE: Duration = Duration::from_secs(10);

/// One logged-in browser.
#[derive(Debug, Clone)]
struct Entry {
    /// The token forms must echo.
    csrf: String,
    /// When the session ends.
    expires: Instant,
}

/// The sessions of this process, by id.
#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Entry>>,
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a session; returns its id.
    pub fn create(&self, now: Instant) -> String {
        let id = random_token();
        let mut map = self.lock();
        map.retain(|_, e| e.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.expires)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        let entry = Entry {
            csrf: random_token(),
            expires: now + SESSION_TTL,
        };
        map.insert(id.clone(), entry);
        id
    }

    /// The CSRF token of a live session.
    pub fn csrf(&self, id: &str, now: Instant) -> Option<String> {
        let mut map = self.lock();
        match map.get(id) {
            Some(e) if e.expires > now => Some(e.csrf.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends a session.
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// 32 random bytes, hex.
fn random_token() -> String {
    hex::encode(rand::rng().random::<[u8; 32]>())
}

/// Spaces login checks process-wide and holds wrong guesses back.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    next: Mutex<Option<Instant>>,
}

impl LoginThrottle {
    /// The time this attempt may be checked at, or `TooManyAttempts` when the queue is long.
    pub fn reserve(&self, now: Instant) -> Result<Instant, ConsoleError> {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let slot = next.map_or(now, |n| n.max(now));
        if slot.saturating_duration_since(now) > MAX_QUEUE {
            return Err(ConsoleError::TooManyAttempts);
        }
        *next = Some(slot + LOGIN_SPACING);
        Ok(slot)
    }

    /// Records a wrong token at `now`: later attempts wait [`WRONG_TOKEN_DELAY`] more.
    pub fn failed(&self, now: Instant) {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        *next = Some(next.map_or(now, |n| n.max(now)) + WRONG_TOKEN_DELAY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_end_on_logout() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let id = sessions.create(now);
        assert!(sessions.csrf(&id, now).is_some());
        assert!(sessions.csrf(&id, now + SESSION_TTL).is_none());
        let id = sessions.create(now);
        sessions.remove(&id);
        assert!(sessions.csrf(&id, now).is_none());
        assert!(sessions.csrf("forged", now).is_none());
    }

    #[test]
    fn wrong_tokens_push_later_attempts_back_and_a_long_queue_is_refused() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        assert_eq!(throttle.reserve(now).unwrap(), now);
        assert_eq!(throttle.reserve(now).unwrap(), now + LOGIN_SPACING);
        throttle.failed(now);
        let slot = throttle.reserve(now).unwrap();
        assert!(slot >= now + WRONG_TOKEN_DELAY, "{:?}", slot - now);
        for _ in 0..20 {
            throttle.failed(now);
        }
        assert!(matches!(
            throttle.reserve(now),
            Err(ConsoleError::TooManyAttempts)
        ));
    }
}
