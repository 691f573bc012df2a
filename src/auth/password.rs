//! Password hashing: argon2id with OWASP's parameters (m = 19 MiB, t = 2, p = 1), run on
//! the blocking pool behind a semaphore so a login storm cannot take every blocking
//! thread.
//!
//! Memory is bounded: each hashing slot owns one argon2 working area (19 MiB), made at
//! its first use and reused by every hash and verification after it. argon2's own
//! `hash_password` allocates that area on every call; freed on whichever blocking thread
//! ran it, the allocator kept a copy in each thread's arena, and a handful of logins left
//! the server holding hundreds of MB (docs/PERFORMANCE.md, "Memory through a login
//! storm"). The hashes are the standard PHC strings either way.

use std::fmt;
use std::sync::{Arc, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// argon2's defaults are OWASP's recommendation: m = 19456 KiB, t = 2, p = 1.
fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// One slot's working area: the blocks new hashes need (and every stored hash made with
/// the same parameters).
fn working_area() -> Vec<Block> {
    vec![Block::default(); Params::default().block_count()]
}

/// Hashes on the calling thread, in a working area of its own (the CLI's fixtures in
/// tests, the benchmark's seed). The server goes through [`Hasher`].
pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    hash_in(password, &mut working_area())
}

/// A new PHC string for `password`, computed in `memory`.
fn hash_in(password: &str, memory: &mut [Block]) -> anyhow::Result<String> {
    let fail = |e: &dyn fmt::Display| anyhow::anyhow!("hashing the password: {e}");
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(|e| fail(&e))?;
    let params = Params::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2()
        .hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, memory)
        .map_err(|e| fail(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| fail(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `phc`, computed in `memory` (or, for a hash
/// made with more memory than that, in an area of its own). Only a PHC string that does
/// not parse is an error; one that cannot be recomputed (unknown parameters) matches
/// nothing, as with argon2's own verifier.
fn verify_in(password: &str, phc: &str, memory: &mut [Block]) -> anyhow::Result<bool> {
    let parsed =
        PasswordHash::new(phc).map_err(|e| anyhow::anyhow!("stored password hash: {e}"))?;
    Ok(recompute(password.as_bytes(), &parsed, memory).unwrap_or(false))
}

/// What argon2's `PasswordVerifier` does, in the caller's memory: the algorithm, version,
/// parameters and salt from the PHC string, the output compared in constant time
/// (`Output`'s `PartialEq`).
fn recompute(password: &[u8], phc: &PasswordHash<'_>, memory: &mut [Block]) -> Option<bool> {
    let (salt, expected) = (phc.salt?, phc.hash?);
    let algorithm = Algorithm::try_from(phc.algorithm).ok()?;
    let version = phc.version.map(Version::try_from).transpose().ok()?.unwrap_or_default();
    let params = Params::try_from(phc).ok()?;
    let mut salt_buf = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buf).ok()?;
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = out.get_mut(..expected.len())?;
    let blocks = params.block_count();
    let hasher = Argon2::new(algorithm, version, params);
    if blocks <= memory.len() {
        hasher.hash_password_into_with_memory(password, salt, out, memory).ok()?;
    } else {
        hasher.hash_password_into(password, salt, out).ok()?;
    }
    Some(Output::new(out).ok()? == expected)
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

/// The async door to argon2: at most `max_parallel` hashes at once, each in one of as
/// many reused working areas. Cheap to clone.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    /// Working areas not in use. There are never more areas than permits: one is taken
    /// (or, the first times, made) only under a permit, and given back before the permit
    /// is released.
    areas: Arc<Mutex<Vec<Vec<Block>>>>,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher").field("permits", &self.permits.available_permits()).finish()
    }
}

/// A working area on loan to one hash; back in the pool when dropped, a panic included.
struct Loan {
    area: Vec<Block>,
    pool: Arc<Mutex<Vec<Vec<Block>>>>,
}

impl Drop for Loan {
    fn drop(&mut self) {
        let area = std::mem::take(&mut self.area);
        // The pool holds buffers only; a panic elsewhere cannot leave it inconsistent.
        self.pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(area);
    }
}

impl Hasher {
    pub fn new(max_parallel: usize) -> Self {
        let slots = max_parallel.max(1);
        Self {
            permits: Arc::new(Semaphore::new(slots)),
            areas: Arc::new(Mutex::new(Vec::with_capacity(slots))),
        }
    }

    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        self.run(move |memory| hash_in(&password, memory)).await
    }

    /// Verifies `password` against `phc`; with no hash (unknown email) it still does the
    /// same work and answers false.
    pub async fn verify(&self, password: String, phc: Option<String>) -> anyhow::Result<bool> {
        self.run(move |memory| match phc {
            Some(phc) => verify_in(&password, &phc, memory),
            None => verify_in(&password, DUMMY_HASH, memory).map(|_| false),
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut [Block]) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let permit = self.permits.clone().acquire_owned().await?;
        let span = tracing::Span::current();
        let pool = self.areas.clone();
        // The permit and the area travel with the work: a client that hangs up must not
        // free a slot while its hash still runs. The loan is dropped (the area given
        // back) before the permit.
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let taken = pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
            let mut loan = Loan { area: taken.unwrap_or_else(working_area), pool };
            span.in_scope(|| f(&mut loan.area))
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
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    fn verify_blocking(password: &str, phc: &str) -> anyhow::Result<bool> {
        verify_in(password, phc, &mut working_area())
    }

    /// argon2's own verifier, which allocates its memory per call.
    fn standard_verify(password: &str, phc: &str) -> bool {
        let parsed = PasswordHash::new(phc).unwrap();
        argon2().verify_password(password.as_bytes(), &parsed).is_ok()
    }

    #[test]
    fn hash_then_verify() {
        let h = hash_blocking("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(verify_blocking("correct horse", &h).ok(), Some(true));
        assert_eq!(verify_blocking("wrong horse", &h).ok(), Some(false));
    }

    #[test]
    fn hashes_made_in_a_reused_area_pass_argon2s_own_verifier() {
        let mut area = working_area();
        let first = hash_in("correct horse", &mut area).unwrap();
        // The same area again, dirty from the first hash.
        let second = hash_in("battery staple", &mut area).unwrap();
        assert!(standard_verify("correct horse", &first));
        assert!(!standard_verify("battery staple", &first));
        assert!(standard_verify("battery staple", &second));
        assert!(!standard_verify("correct horse", &second));
    }

    #[test]
    fn hashes_made_by_argon2_itself_verify_in_a_reused_area() {
        let salt = SaltString::generate(&mut OsRng);
        let standard = argon2().hash_password(b"correct horse", &salt).unwrap().to_string();
        let mut area = working_area();
        assert_eq!(verify_in("correct horse", &standard, &mut area).ok(), Some(true));
        assert_eq!(verify_in("correct hors", &standard, &mut area).ok(), Some(false));
        assert_eq!(verify_in("correct horse", &standard, &mut area).ok(), Some(true));
    }

    #[test]
    fn stored_hashes_with_other_parameters_still_verify() {
        let mut area = working_area();
        // Smaller (fits the area), larger (an area of its own), argon2i and a 16-byte
        // output: each as argon2 itself wrote it.
        let variants = [
            (Algorithm::Argon2id, Params::new(8192, 1, 1, None).unwrap()),
            (Algorithm::Argon2id, Params::new(32768, 1, 1, None).unwrap()),
            (Algorithm::Argon2i, Params::new(4096, 3, 1, None).unwrap()),
            (Algorithm::Argon2id, Params::new(4096, 2, 2, Some(16)).unwrap()),
        ];
        for (algorithm, params) in variants {
            let hasher = Argon2::new(algorithm, Version::V0x13, params);
            let salt = SaltString::generate(&mut OsRng);
            let phc = hasher.hash_password(b"correct horse", &salt).unwrap().to_string();
            assert_eq!(verify_in("correct horse", &phc, &mut area).ok(), Some(true), "{phc}");
            assert_eq!(verify_in("Correct horse", &phc, &mut area).ok(), Some(false), "{phc}");
        }
    }

    #[test]
    fn a_stored_hash_that_does_not_parse_is_an_error() {
        assert!(verify_blocking("x", "not a phc string").is_err());
    }

    #[tokio::test]
    async fn the_hasher_reuses_at_most_one_area_per_slot() {
        let hasher = Hasher::new(2);
        let hashes = futures_join(&hasher).await;
        for (password, phc) in &hashes {
            assert!(standard_verify(password, phc));
            assert_eq!(hasher.verify(password.clone(), Some(phc.clone())).await.ok(), Some(true));
        }
        assert_eq!(hasher.verify("nope".into(), Some(hashes[0].1.clone())).await.ok(), Some(false));
        assert_eq!(hasher.verify("nope".into(), None).await.ok(), Some(false));
        let areas = hasher.areas.lock().unwrap().len();
        assert!((1..=2).contains(&areas), "{areas} working areas for 2 slots");
    }

    async fn futures_join(hasher: &Hasher) -> Vec<(String, String)> {
        let tasks: Vec<_> = (0..4)
            .map(|i| {
                let (hasher, password) = (hasher.clone(), format!("password {i}"));
                tokio::spawn(async move {
                    let phc = hasher.hash(password.clone()).await.unwrap();
                    (password, phc)
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
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
