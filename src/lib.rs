//! sessiond: a self-contained session-expiration server on embedded SQLite.
//!
//! Password login issues a short-lived access token (an HS256 JWT) and a rotating refresh
//! token; each refresh exchanges the presented token for a new one under the account's
//! session policy *as it stands now* (idle and absolute limits the owner sets within the
//! system's bounds). Owners can read and change that policy and revoke their account's
//! sessions in bulk; every change writes its audit row in the same transaction as the change.
//!
//! Layers, outside in: [`http`] (HTTP in and out, thin handlers) → [`service`] (domain
//! operations) → [`policy`] (pure rules) and [`db`] (all SQL). [`app`] wires them;
//! [`cli`] is the binary's command line.

pub mod app;
pub mod auth;
pub mod cli;
pub mod client_addr;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod policy;
pub mod revocation;
pub mod service;
pub mod state;

pub use app::App;
pub use config::Config;
