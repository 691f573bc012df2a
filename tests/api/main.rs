//! sessiond's integration tests: one binary (it links once). Most tests build the real
//! app in-process through `App::build` on `127.0.0.1:0` with a private in-memory
//! database and the test clock; `process` tests run the real `sessiond` binary.

// Polling a child process for its exit needs a real sleep; nothing here waits on time
// that the server's clock controls.
#![allow(clippy::disallowed_methods)]
// A failed unwrap is a failed test, with its location; the helpers are test code too.
#![allow(clippy::unwrap_used)]

mod helpers;
mod process;

mod audit;
mod auth;
mod backup;
mod cli;
mod concurrency;
mod connections;
mod console;
mod crash;
mod database_url;
mod hostile;
mod http;
mod logging;
mod metrics;
mod openapi;
mod password;
mod policy;
mod postgres;
mod preview;
mod proxies;
mod prune;
mod reasons;
mod reauth;
mod refresh;
mod revoke;
mod secrets;
mod server_process;
mod sessions;
mod tenancy;
mod throttle;
mod unhappy_starts;
