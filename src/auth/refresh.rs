//! Refresh tokens: 256 random bits, handed out base64url-encoded; only their SHA-256 is
//! stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::{NoContext, Timestamp, Uuid};

/// A freshly minted refresh token: the secret for the client, the hash for storage.
pub struct Minted {
    pub token: String,
    pub hash: [u8; 32],
}

pub fn mint() -> Minted {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    Minted { token, hash }
}

/// The lookup key of a presented token. Any string hashes; an unknown one finds nothing.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The id of a new token or session: a UUID of version 7, whose leading bits are the
/// instant `now` (from the one clock). Ids made later sort later, so the token table's
/// key and its index of ids grow at their ends: a rotation's new entries land on pages
/// the last rotations already wrote, where random ids would each dirty a page of their
/// own (docs/PERFORMANCE.md, issue 11). The 74 bits after the instant stay random.
pub fn new_id(now: DateTime<Utc>) -> Uuid {
    // Before 1970 there is nothing to order against: such a clock gets the epoch.
    let secs = u64::try_from(now.timestamp()).unwrap_or(0);
    Uuid::new_v7(Timestamp::from_unix(NoContext, secs, now.timestamp_subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_hash_matches() {
        let a = mint();
        let b = mint();
        assert_ne!(a.token, b.token);
        assert_eq!(a.token.len(), 43);
        assert_eq!(hash(&a.token), a.hash);
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn ids_carry_their_instant_and_sort_by_it() {
        let t0 = DateTime::from_timestamp_millis(1_780_000_000_123).unwrap_or_default();
        let a = new_id(t0);
        let b = new_id(t0 + chrono::TimeDelta::milliseconds(1));
        assert_eq!(a.get_version_num(), 7);
        let (secs, nanos) = a.get_timestamp().map(|t| t.to_unix()).unwrap_or_default();
        assert_eq!((secs, nanos / 1_000_000), (1_780_000_000, 123));
        assert!(a.to_string() < b.to_string(), "{a} sorts before {b} as stored text");
        assert_ne!(new_id(t0), new_id(t0), "random below the millisecond");
    }
}
