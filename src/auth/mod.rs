//! Authentication: access tokens (JWT), refresh tokens, password hashing, and the
//! extractors that turn a request's bearer token into a user.

pub mod extract;
pub mod jwt;
pub mod password;
pub mod refresh;
pub mod throttle;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use extract::{AuthUser, Owner};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Engineer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Engineer => "engineer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "engineer" => Ok(Role::Engineer),
            other => Err(format!("unknown role {other:?}: expected owner, admin or engineer")),
        }
    }
}
