//! Test helpers shared by orgsync's unit tests (in `src/`) and its integration tests
//! (`tests/it/`), so each exists once:
//!
//! - `wait` polls a condition until it holds or a deadline passes: the one way tests wait.
//! - `pg` creates a fresh PostgreSQL database per test on the server
//!   `ORGSYNC_TEST_DATABASE_URL` names, and fails loudly when that server is unreachable.

mod pg;
mod wait;

pub use pg::{TEST_DATABASE_VAR, TestDb};
pub use wait::{POLL, wait_for, wait_for_blocking, wait_for_ok};
