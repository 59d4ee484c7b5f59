//! orgsync's integration tests: the real daemon on port 0 with a temporary SQLite file (or,
//! in `postgres`, a fresh PostgreSQL database) and the Scalekit stand-in, driven over
//! loopback HTTP with signed fixture payloads.

mod admin;
mod admin_listener;
mod adopt;
mod cli;
mod connections;
mod console;
mod console_browser;
mod console_webdriver;
mod convergence;
mod delivery;
mod drift;
mod helpers;
mod hostile;
mod logs;
mod metrics;
mod migration;
mod postgres;
mod process;
mod replay;
mod salesforce;
mod semantics;
mod signed_json;
mod stripe;
