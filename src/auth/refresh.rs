//! Refresh tokens: a 6-byte time prefix and 256 random bits, handed out base64url-encoded;
//! only their lookup key (the prefix, then the token's SHA-256) is stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::{NoContext, Timestamp, Uuid};

/// Bytes of a token's time prefix: the milliseconds since the epoch at minting, big-endian.
const PREFIX: usize = 6;
/// Random bytes after the prefix: the secret.
const SECRET: usize = 32;
/// Characters of a token, base64url without padding (51).
const ENCODED_LEN: usize = ((PREFIX + SECRET) * 4).div_ceil(3);

/// A freshly minted refresh token: the secret for the client, the key for storage.
pub struct Minted {
    pub token: String,
    pub key: Vec<u8>,
}

/// A new token whose prefix is the instant `now` (from the one clock).
pub fn mint(now: DateTime<Utc>) -> Minted {
    let mut bytes = [0u8; PREFIX + SECRET];
    // Before 1970 there is nothing to order against: such a clock gets the epoch.
    let ms = u64::try_from(now.timestamp_millis()).unwrap_or(0).to_be_bytes();
    bytes[..PREFIX].copy_from_slice(&ms[ms.len() - PREFIX..]);
    rand::rng().fill_bytes(&mut bytes[PREFIX..]);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let key = key_of(&bytes[..PREFIX], &token);
    Minted { token, key }
}

/// The stored key of a presented token: its time prefix, then the SHA-256 of the whole
/// string. Keys sort by minting time, so new tokens' entries in the unique index over
/// keys land at one place (after every earlier key of this shape, before the bare hashes
/// of older tokens), on pages the last rotations already wrote; a bare hash would dirty a
/// random page of its own in every rotation, a page the log and then the checkpoint must
/// write (docs/PERFORMANCE.md, issue 11).
///
/// Tokens minted before the prefix (43 characters, 32 random bytes) keep their bare
/// SHA-256 as the key, so they go on working. Any other string hashes too (a 51-character
/// one that is not canonical base64url among them: the server never minted it), and an
/// unknown one finds nothing: the prefix only orders, it is not trusted, since the hash
/// after it must still match the whole string.
pub fn lookup_key(token: &str) -> Vec<u8> {
    let mut bytes = [0u8; PREFIX + SECRET];
    let ours = token.len() == ENCODED_LEN
        && matches!(URL_SAFE_NO_PAD.decode_slice(token, &mut bytes), Ok(n) if n == bytes.len());
    key_of(if ours { &bytes[..PREFIX] } else { &[] }, token)
}

/// `prefix` (empty for a token of the old shape), then the SHA-256 of the token.
fn key_of(prefix: &[u8], token: &str) -> Vec<u8> {
    let digest = Sha256::digest(token.as_bytes());
    let mut key = Vec::with_capacity(prefix.len() + digest.len());
    key.extend_from_slice(prefix);
    key.extend_from_slice(&digest);
    key
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

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap_or_default()
    }

    #[test]
    fn tokens_are_unique_and_their_key_matches() {
        let now = at(1_780_000_000_123);
        let a = mint(now);
        let b = mint(now);
        assert_ne!(a.token, b.token);
        assert_eq!(a.token.len(), ENCODED_LEN);
        assert_eq!(lookup_key(&a.token), a.key);
        assert_ne!(a.key, b.key);
        assert_eq!(a.key.len(), PREFIX + 32);
        assert_eq!(a.key[PREFIX..], Sha256::digest(a.token.as_bytes())[..]);
    }

    #[test]
    fn keys_sort_by_minting_time() {
        let t0 = 1_780_000_000_123;
        let keys: Vec<Vec<u8>> = (0..300).map(|i| mint(at(t0 + i * 997)).key).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "keys in minting order");
        assert_eq!(&keys[0][..PREFIX], &0x019e_7044_887b_u64.to_be_bytes()[2..]);
        assert_eq!(&mint(at(-5)).key[..PREFIX], &[0u8; PREFIX], "before 1970: the epoch");
    }

    #[test]
    fn a_token_from_before_the_prefix_keeps_its_bare_hash() {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let old = URL_SAFE_NO_PAD.encode(secret);
        assert_eq!(old.len(), 43);
        assert_eq!(lookup_key(&old), Sha256::digest(old.as_bytes()).to_vec());
    }

    #[test]
    fn strings_that_are_not_tokens_get_a_bare_hash() {
        let not_base64 = "!".repeat(ENCODED_LEN);
        for s in ["", "x", not_base64.as_str()] {
            assert_eq!(lookup_key(s), Sha256::digest(s.as_bytes()).to_vec(), "{s:?}");
        }
    }

    #[test]
    fn ids_carry_their_instant_and_sort_by_it() {
        let t0 = at(1_780_000_000_123);
        let a = new_id(t0);
        let b = new_id(t0 + chrono::TimeDelta::milliseconds(1));
        assert_eq!(a.get_version_num(), 7);
        let (secs, nanos) = a.get_timestamp().map(|t| t.to_unix()).unwrap_or_default();
        assert_eq!((secs, nanos / 1_000_000), (1_780_000_000, 123));
        assert!(a.to_string() < b.to_string(), "{a} sorts before {b} as stored text");
        assert_ne!(new_id(t0), new_id(t0), "random below the millisecond");
    }
}
