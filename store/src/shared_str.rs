//! Text that series keys share: one allocation for every key with the same name or unit.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Text that keys share (a name, a unit): cloning it shares one allocation. It reads, compares,
/// hashes, prints and serializes as the `str` it holds. Every empty one (the unit of most
/// keys) is one allocation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SharedStr(Arc<str>);

impl SharedStr {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether both are one allocation (not only equal text).
    pub fn is_shared_with(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Default for SharedStr {
    fn default() -> Self {
        static EMPTY: std::sync::OnceLock<SharedStr> = std::sync::OnceLock::new();
        EMPTY.get_or_init(|| SharedStr(Arc::from(""))).clone()
    }
}

impl std::ops::Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SharedStr {
    fn from(s: &str) -> Self {
        if s.is_empty() { Self::default() } else { Self(Arc::from(s)) }
    }
}

impl From<String> for SharedStr {
    fn from(s: String) -> Self {
        if s.is_empty() { Self::default() } else { Self(Arc::from(s)) }
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<SharedStr> for &str {
    fn eq(&self, other: &SharedStr) -> bool {
        **self == *other.0
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        *self == *other.0
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Kind, SeriesKey};

    use super::*;

    #[test]
    fn shared_text_reads_as_its_str_and_clones_share_it() {
        let key = SeriesKey::new("api", "op.duration", Kind::Distribution).unit("s");
        assert_eq!(
            serde_json::to_string(&key).unwrap_or_default(),
            r#"{"name":"op.duration","kind":"distribution","unit":"s","labels":[["service","api"]]}"#,
            "names and units serialize as strings, as when they were `String`s"
        );
        assert_eq!(format!("{:?}", key.name), r#""op.duration""#);
        let mut counts: std::collections::HashMap<SharedStr, u32> = std::collections::HashMap::new();
        counts.insert(SharedStr::from(String::from("op.duration")), 1);
        assert_eq!(counts.get("op.duration"), Some(&1), "found by a &str: hashes as its str");
        assert_eq!(key.name, "op.duration");
        assert_eq!("op.duration", key.name, "compares either way round");
        let copy = key.clone();
        assert!(copy.name.is_shared_with(&key.name));
        assert!(!SharedStr::from("op.duration").is_shared_with(&key.name));
        let plain = SeriesKey::new("api", "op.calls", Kind::Counter);
        assert!(plain.unit.is_empty());
        assert!(plain.unit.is_shared_with(&SeriesKey::new("x", "y", Kind::Gauge).unit), "one empty unit for all");
    }
}
