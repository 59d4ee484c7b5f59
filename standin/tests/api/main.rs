//! One integration-test binary for the stand-in, driven through `Router::oneshot`.

mod auth;
mod faults;
mod helpers;
mod manual;
mod organizations;
mod routing;
mod search;
mod users;
