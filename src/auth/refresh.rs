//! Refresh tokens: 256 random bits, handed out base64url-encoded; only their SHA-256 is
//! stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

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
}
