//! The API keys a gateway accepts, compared in constant time, each with the
//! [`Policy`] that says what it may do.

use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use crate::Policy;

/// The accepted keys and their rights. Cheap to clone; clones share the set,
/// so keys replaced with [`ApiKeys::set`] or [`ApiKeys::set_with_policies`]
/// take effect at once.
///
/// Keys are kept as SHA-256 digests: comparing fixed-length digests in
/// constant time hides both the content and the length of the keys, and
/// every key is compared (no early exit; the match's policy is picked by a
/// constant-time select), so timing does not reveal which key matched or how
/// many there are beyond their count.
#[derive(Clone)]
pub struct ApiKeys(Arc<RwLock<Vec<Entry>>>);

struct Entry {
    digest: [u8; 32],
    policy: Arc<Policy>,
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl ApiKeys {
    /// Keys with every right ([`Policy::all`]). Empty keys are ignored: an
    /// empty header must never authenticate.
    pub fn new<S: AsRef<str>>(keys: impl IntoIterator<Item = S>) -> ApiKeys {
        ApiKeys(Arc::new(RwLock::new(Self::all_rights(keys))))
    }

    /// Keys each with its policy (an `Arc<Policy>` shares one between
    /// keys). Empty keys are ignored; of a key given twice, the last policy counts.
    pub fn with_policies<S: AsRef<str>, P: Into<Arc<Policy>>>(keys: impl IntoIterator<Item = (S, P)>) -> ApiKeys {
        ApiKeys(Arc::new(RwLock::new(Self::entries(keys))))
    }

    fn all_rights<S: AsRef<str>>(keys: impl IntoIterator<Item = S>) -> Vec<Entry> {
        let all = Arc::new(Policy::all());
        Self::entries(keys.into_iter().map(|k| (k, all.clone())))
    }

    fn entries<S: AsRef<str>, P: Into<Arc<Policy>>>(keys: impl IntoIterator<Item = (S, P)>) -> Vec<Entry> {
        keys.into_iter()
            .filter(|(k, _)| !k.as_ref().is_empty())
            .map(|(k, p)| Entry { digest: digest(k.as_ref()), policy: p.into() })
            .collect()
    }

    fn replace(&self, entries: Vec<Entry>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = entries;
    }

    /// Replaces every key with these, each with every right.
    pub fn set<S: AsRef<str>>(&self, keys: impl IntoIterator<Item = S>) {
        self.replace(Self::all_rights(keys));
    }

    /// Replaces every key with these, each with its policy.
    pub fn set_with_policies<S: AsRef<str>, P: Into<Arc<Policy>>>(&self, keys: impl IntoIterator<Item = (S, P)>) {
        self.replace(Self::entries(keys));
    }

    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The policy of `key` when it is one of the keys.
    pub fn accepts(&self, key: &str) -> Option<Arc<Policy>> {
        let given = digest(key);
        let keys = self.0.read().unwrap_or_else(|e| e.into_inner());
        let mut found = Choice::from(0);
        let mut index = 0u64;
        for (i, k) in keys.iter().enumerate() {
            let same = k.digest.ct_eq(&given);
            index.conditional_assign(&(i as u64), same);
            found |= same;
        }
        bool::from(found).then(|| keys[index as usize].policy.clone())
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
    use crate::{Action, Policy};

    #[test]
    fn any_of_several_keys_is_accepted_and_nothing_else() {
        let keys = ApiKeys::new(["first-key", "second-key", ""]);
        assert_eq!(keys.len(), 2, "the empty key is dropped");
        assert!(keys.accepts("first-key").is_some() && keys.accepts("second-key").is_some());
        for wrong in ["", "first-ke", "first-keyx", "FIRST-KEY", "second-key "] {
            assert!(keys.accepts(wrong).is_none(), "{wrong:?}");
        }
        keys.clone().set(["rotated"]);
        assert!(keys.accepts("rotated").is_some() && keys.accepts("first-key").is_none(), "clones share the set");
    }

    #[test]
    fn each_key_carries_its_own_policy() {
        let reader = Policy::from_rights([("users".to_owned(), Action::Find)]);
        let keys = ApiKeys::with_policies([("reader", reader.clone()), ("admin", Policy::all()), ("", Policy::all())]);
        assert_eq!(keys.len(), 2);
        assert_eq!(*keys.accepts("reader").unwrap(), reader);
        assert_eq!(*keys.accepts("admin").unwrap(), Policy::all());
        assert!(keys.accepts("Reader").is_none());
        assert_eq!(*ApiKeys::new(["bare"]).accepts("bare").unwrap(), Policy::all(), "a bare key has every right");

        keys.clone().set_with_policies([("next", reader.clone()), ("next", Policy::all()), ("other", reader.clone())]);
        assert!(keys.accepts("reader").is_none(), "clones share the set");
        assert_eq!(*keys.accepts("next").unwrap(), Policy::all(), "of a key given twice, the last policy counts");
        assert_eq!(*keys.accepts("other").unwrap(), reader);
    }
}
