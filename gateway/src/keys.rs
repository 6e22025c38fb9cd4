//! The API keys a gateway accepts, compared in constant time.

use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// The accepted keys. Cheap to clone; clones share the set, so a key
/// replaced with [`ApiKeys::set`] takes effect at once.
///
/// Keys are kept as SHA-256 digests: comparing fixed-length digests in
/// constant time hides both the content and the length of the keys, and
/// every key is compared (no early exit), so timing does not reveal which
/// key matched or how many there are beyond their count.
#[derive(Clone)]
pub struct ApiKeys(Arc<RwLock<Vec<[u8; 32]>>>);

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl ApiKeys {
    /// Empty keys are ignored: an empty header must never authenticate.
    pub fn new<S: AsRef<str>>(keys: impl IntoIterator<Item = S>) -> ApiKeys {
        ApiKeys(Arc::new(RwLock::new(Self::digests(keys))))
    }

    fn digests<S: AsRef<str>>(keys: impl IntoIterator<Item = S>) -> Vec<[u8; 32]> {
        keys.into_iter().filter(|k| !k.as_ref().is_empty()).map(|k| digest(k.as_ref())).collect()
    }

    /// Replaces every key.
    pub fn set<S: AsRef<str>>(&self, keys: impl IntoIterator<Item = S>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Self::digests(keys);
    }

    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `key` is one of the keys.
    pub fn accepts(&self, key: &str) -> bool {
        let given = digest(key);
        let keys = self.0.read().unwrap_or_else(|e| e.into_inner());
        let mut found = Choice::from(0);
        for k in keys.iter() {
            found |= k.ct_eq(&given);
        }
        bool::from(found)
    }
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::ApiKeys;

    #[test]
    fn any_of_several_keys_is_accepted_and_nothing_else() {
        let keys = ApiKeys::new(["first-key", "second-key", ""]);
        assert_eq!(keys.len(), 2, "the empty key is dropped");
        assert!(keys.accepts("first-key") && keys.accepts("second-key"));
        for wrong in ["", "first-ke", "first-keyx", "FIRST-KEY", "second-key "] {
            assert!(!keys.accepts(wrong), "{wrong:?}");
        }
        keys.clone().set(["rotated"]);
        assert!(keys.accepts("rotated") && !keys.accepts("first-key"), "clones share the set");
    }
}
