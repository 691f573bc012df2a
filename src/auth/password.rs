//! Password hashing: argon2id with OWASP's parameters (m = 19 MiB, t = 2, p = 1), run on
//! the blocking pool behind a semaphore so a login storm cannot take every blocking
//! thread or unbounded memory.

use std::fmt;
use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// argon2's defaults are OWASP's recommendation: m = 19456 KiB, t = 2, p = 1.
fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// Hashes on the calling thread (from [`Hasher`]'s blocking tasks, and test fixtures).
pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
}

fn verify_blocking(password: &str, phc: &str) -> anyhow::Result<bool> {
    let parsed =
        PasswordHash::new(phc).map_err(|e| anyhow::anyhow!("stored password hash: {e}"))?;
    Ok(argon2().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Whether a password is acceptable as a new password.
pub fn check_new_password(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(format!(
            "password must be between {MIN_PASSWORD_CHARS} and {MAX_PASSWORD_CHARS} characters"
        ));
    }
    Ok(())
}

/// What an unknown email's password is verified against, so that it costs exactly as
/// much as a known one. Same parameters as every stored hash; nobody has its password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$j9kJ8i3gluefCFmvSXUTww$IF4yk3kaeO8+dqMoxs2/P9nTCCClvPaGMNVEazaN0dE";

/// The async door to argon2. Cheap to clone.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher").field("permits", &self.permits.available_permits()).finish()
    }
}

impl Hasher {
    pub fn new(max_parallel: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(max_parallel.max(1))) }
    }

    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        self.run(move || hash_blocking(&password)).await
    }

    /// Verifies `password` against `phc`; with no hash (unknown email) it still does the
    /// same work and answers false.
    pub async fn verify(&self, password: String, phc: Option<String>) -> anyhow::Result<bool> {
        self.run(move || match phc {
            Some(phc) => verify_blocking(&password, &phc),
            None => verify_blocking(&password, DUMMY_HASH).map(|_| false),
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let permit = self.permits.clone().acquire_owned().await?;
        let span = tracing::Span::current();
        // The permit travels with the work: a client that hangs up must not free a slot
        // while its hash still runs.
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            span.in_scope(f)
        });
        match task.await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(anyhow::Error::new(e).context("password hashing task was cancelled")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash_blocking("correct horse").ok().unwrap_or_default();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(verify_blocking("correct horse", &h).ok(), Some(true));
        assert_eq!(verify_blocking("wrong horse", &h).ok(), Some(false));
    }

    #[test]
    fn the_dummy_hash_parses_with_the_same_parameters() {
        assert_eq!(verify_blocking("anything", DUMMY_HASH).ok(), Some(false));
        let real = hash_blocking("x").unwrap_or_default();
        assert_eq!(real.split('$').nth(3), DUMMY_HASH.split('$').nth(3));
    }

    #[test]
    fn new_password_length_is_checked_in_characters() {
        assert!(check_new_password("1234567").is_err());
        assert!(check_new_password("12345678").is_ok());
        assert!(check_new_password(&"é".repeat(1024)).is_ok());
        assert!(check_new_password(&"é".repeat(1025)).is_err());
    }
}
