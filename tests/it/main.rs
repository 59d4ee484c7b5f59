//! orgsync's integration tests: the real daemon on port 0 with a temporary SQLite file (or,
//! in `postgres`, a fresh PostgreSQL database) and the Scalekit stand-in, driven over
//! loopback HTTP with signed fixture payloads.

mod admin;
mod cli;
mod convergence;
mod delivery;
mod helpers;
mod metrics;
mod migration;
mod postgres;
mod process;
mod replay;
mod salesforce;
mod semantics;
mod signed_json;
mod stripe;
