//! Access tokens: HS256 JWTs, the algorithm pinned, expiry checked against the server
//! clock with no leeway.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: Uuid,
    /// The session the token was issued for; revoking it refuses the token at once.
    pub sid: Uuid,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// The signing keys. `Debug` never shows them.
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: TimeDelta,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys").field("lifetime", &self.lifetime).finish_non_exhaustive()
    }
}

/// Why a bearer token was refused. Never shown to the client (it gets
/// `not_authenticated`), only logged at debug level.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
}

impl Keys {
    pub fn new(secret: &[u8], lifetime_minutes: i64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Time claims are checked below against the server clock (which the test clock
        // moves), with no leeway; the library's own check reads the system time and
        // allows 60 s by default.
        validation.leeway = 0;
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "nbf", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            lifetime: TimeDelta::minutes(lifetime_minutes),
        }
    }

    pub fn lifetime_seconds(&self) -> i64 {
        self.lifetime.num_seconds()
    }

    pub fn issue(
        &self,
        user: Uuid,
        session: Uuid,
        now: DateTime<Utc>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let iat = now.timestamp();
        let claims =
            Claims { sub: user, sid: session, iat, nbf: iat, exp: iat + self.lifetime_seconds() };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Verifies signature and algorithm, then time: refused from the second `exp` is
    /// reached, and before `nbf`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, TokenError> {
        let claims =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)?.claims;
        let now = now.timestamp();
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        if now < claims.nbf {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }
}

/// Bytes of a generated secret.
const GENERATED_SECRET_BYTES: usize = 64;

/// The secret to sign with: the configured one; else, for a database file, the one kept
/// in `<database>.jwt-secret` (0600), created on first start; for `:memory:`, a random
/// one for this process.
pub fn resolve_secret(configured: &str, database_path: &str) -> anyhow::Result<Vec<u8>> {
    if !configured.is_empty() {
        return Ok(configured.as_bytes().to_vec());
    }
    if database_path == ":memory:" {
        return Ok(generate_secret().into_bytes());
    }
    load_or_create_secret_file(&secret_path(database_path))
}

pub fn secret_path(database_path: &str) -> PathBuf {
    PathBuf::from(format!("{database_path}.jwt-secret"))
}

/// A new random signing secret (64 bytes, URL-safe base64).
pub fn generate_secret() -> String {
    let mut bytes = [0u8; GENERATED_SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Creates the file atomically — written to a private temporary file, then hard-linked
/// into place — so two processes starting at once agree on one secret and nobody reads a
/// half-written file.
fn load_or_create_secret_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    use std::os::unix::fs::OpenOptionsExt;

    match std::fs::read_to_string(path) {
        Ok(text) => return validate_secret_file(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let tmp =
        path.with_extension(format!("tmp-{}-{}", std::process::id(), Uuid::new_v4().simple()));
    let secret = generate_secret();
    let write = || -> std::io::Result<()> {
        let mut f =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(secret.as_bytes())?;
        f.sync_all()
    };
    write().with_context(|| format!("cannot write {}", tmp.display()))?;
    let linked = std::fs::hard_link(&tmp, path);
    // The temporary name is removed whether or not we won the race.
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(secret.into_bytes()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            validate_secret_file(path, &text)
        }
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// A warning when the secret in use comes from a file others may read. Returned rather
/// than logged, so that it is logged once the server is listening: a start that fails
/// afterwards must still print just one line.
pub fn secret_file_warning(configured: &str, database_path: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    if !configured.is_empty() || database_path == ":memory:" {
        return None;
    }
    let path = secret_path(database_path);
    let meta = std::fs::metadata(&path).ok()?;
    (meta.permissions().mode() & 0o077 != 0).then(|| {
        format!(
            "the JWT secret file {} is readable by others; make it private with chmod 600",
            path.display()
        )
    })
}

fn validate_secret_file(path: &Path, text: &str) -> anyhow::Result<Vec<u8>> {
    let secret = text.trim();
    if secret.len() < crate::config::MIN_JWT_SECRET_BYTES {
        anyhow::bail!(
            "{} holds fewer than {} bytes; delete it to generate a new secret",
            path.display(),
            crate::config::MIN_JWT_SECRET_BYTES
        );
    }
    Ok(secret.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(b"0123456789abcdef0123456789abcdef", 5)
    }

    #[test]
    fn token_is_refused_from_the_instant_it_expires() {
        let k = keys();
        let t0 = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000);
        let token = k.issue(Uuid::new_v4(), Uuid::new_v4(), t0).ok().unwrap_or_default();
        assert!(k.verify(&token, t0).is_ok());
        assert!(k.verify(&token, t0 + TimeDelta::milliseconds(299_999)).is_ok());
        assert!(matches!(k.verify(&token, t0 + TimeDelta::seconds(300)), Err(TokenError::Expired)));
        assert!(matches!(
            k.verify(&token, t0 - TimeDelta::seconds(1)),
            Err(TokenError::NotYetValid)
        ));
    }

    #[test]
    fn other_secret_and_alg_none_are_refused() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000);
        let other = Keys::new(b"another-secret-another-secret-xx", 5);
        let token = other.issue(Uuid::new_v4(), Uuid::new_v4(), t0).ok().unwrap_or_default();
        assert!(keys().verify(&token, t0).is_err());
        let payload = token.split('.').nth(1).unwrap_or_default();
        let none =
            format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#));
        assert!(keys().verify(&none, t0).is_err());
    }

    #[test]
    fn secret_file_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().ok();
        let Some(dir) = dir else { panic!("tempdir") };
        let db = dir.path().join("s.db");
        let db = db.to_string_lossy();
        let a = resolve_secret("", &db).ok();
        let b = resolve_secret("", &db).ok();
        assert!(a.is_some() && a == b);
        let mode = std::fs::metadata(secret_path(&db)).map(|m| m.permissions().mode() & 0o777).ok();
        assert_eq!(mode, Some(0o600));
    }
}
