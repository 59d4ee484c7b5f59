//! orgsync links billing and CRM webhooks to Scalekit organizations and users.
//!
//! The crate is laid out along the path an event takes:
//!
//! - [`sources`] verifies a webhook delivery (Stripe, Salesforce, HMAC, Standard Webhooks),
//!   parses it into [`model::InboundEvent`]s and shapes the answer the sender expects.
//! - [`rules`] compiles the configured mapping rules and turns an event into
//!   [`model::Change`]s for organizations and users.
//! - [`store`] keeps events, jobs, field versions and links durably (SQLite by default).
//! - [`worker`] claims the jobs of one target at a time, merges them, and applies them
//!   through [`scalekit`], the REST client, with retries stored as the next run time.
//! - [`http`] is the axum router: webhooks, health and readiness, `/metrics`, and the admin
//!   API (behind a bearer token) and console, optionally on a second listener; the only
//!   place that knows status codes. It serves each listener with bounded connections.
//! - [`replay`] runs stored events through the current rules again (or dry-runs them, or
//!   diffs what they would change against the live objects).
//! - [`drift`] compares the values orgsync wrote with the live objects and repairs them.
//! - [`config`] loads the typed settings; [`app`] wires everything and runs it until
//!   cancelled; [`cli`] is the command line; [`telemetry`] sets up logging and holds the
//!   app's metrics registry.
//! - [`model`] holds the domain types every layer shares; [`clock`] is the one source of
//!   "now" and of timed waits (the wall clock in the daemon, a manual one in tests).

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod drift;
pub mod http;
pub mod model;
pub mod replay;
pub mod rules;
pub mod scalekit;
pub mod sources;
pub mod store;
pub mod telemetry;
pub mod worker;
