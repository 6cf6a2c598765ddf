//! The series registry: every series' identity (name and labels), kind and id, held in
//! memory by the writer so a flush looks its keys up without touching the file, and the
//! cardinality limits new series are checked against.

use std::collections::HashMap;

use rusqlite::{TransactionBehavior, params};

use crate::codec::put_varint;
use crate::error::{Error, Result};
use crate::model::{Kind, Registration, RejectReason, SeriesId, SeriesKey};
use crate::write::Writer;

/// A series' identity, its name and labels, in one allocation: each string after its length
/// as a varint. The registry holds one per series, by the 100 000: as a `String` and a
/// `Vec` of `String` pairs the same identity took four to six allocations, about 220 bytes
/// for a key with one label, where this takes one of about 30.
type Identity = Box<[u8]>;

/// Write the identity of `name` and `labels` into `out` (cleared first).
fn identity<'a>(out: &mut Vec<u8>, name: &str, labels: impl Iterator<Item = (&'a str, &'a str)>) {
    out.clear();
    for s in std::iter::once(name).chain(labels.flat_map(|(k, v)| [k, v])) {
        put_varint(out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
}

type IdentityMap = hashbrown::HashMap<Identity, (SeriesId, Kind), foldhash::fast::RandomState>;

#[derive(Debug, Default)]
pub(crate) struct Registry {
    by_identity: IdentityMap,
    kinds: HashMap<SeriesId, Kind>,
    per_name: HashMap<String, usize>,
}

impl Writer {
    pub(crate) fn load_registry(&mut self) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare("SELECT s.id, s.name, s.kind, l.labels FROM series s JOIN labelset l ON l.id = s.labelset_id")
            .map_err(|e| Error::sql(&self.path, e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, SeriesId>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(3)?))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| Error::sql(&self.path, e))?;
        drop(stmt);
        let mut buf = Vec::new();
        for (id, name, kind, labels) in rows {
            let kind = Kind::from_code(kind).ok_or_else(|| Error::Corrupt {
                path: self.path.clone(),
                detail: format!("series {id} has unknown kind {kind}"),
            })?;
            let labels: Vec<(String, String)> = serde_json::from_str(&labels).map_err(|e| Error::Corrupt {
                path: self.path.clone(),
                detail: format!("series {id} has unreadable labels: {e}"),
            })?;
            identity(&mut buf, &name, labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            *self.registry.per_name.entry(name).or_default() += 1;
            self.registry.kinds.insert(id, kind);
            self.registry.by_identity.insert(buf.as_slice().into(), (id, kind));
        }
        Ok(())
    }

    /// Number of registered series.
    pub fn series_count(&self) -> usize {
        self.registry.kinds.len()
    }

    /// Register one series (see [`Writer::register_all`]).
    pub fn register(&mut self, key: &SeriesKey, now_ms: i64) -> Result<Registration> {
        Ok(self.register_all(std::slice::from_ref(key), now_ms)?[0])
    }

    /// Register series, in one transaction. Known keys return their id without touching the
    /// file. New keys past a cardinality limit, or whose name and labels exist with another
    /// kind, are [`Registration::Rejected`] for the caller to count.
    pub fn register_all<'k>(
        &mut self,
        keys: impl IntoIterator<Item = &'k SeriesKey>,
        now_ms: i64,
    ) -> Result<Vec<Registration>> {
        let keys = keys.into_iter();
        let mut out = Vec::with_capacity(keys.size_hint().0);
        // The new series: their identities (also to find a key given twice)…
        let mut pending = IdentityMap::default();
        // …and their names, ids and kinds, in order.
        let mut added: Vec<(&'k str, SeriesId, Kind)> = Vec::new();
        let mut buf = Vec::new();
        let mut per_name_added: HashMap<&str, usize> = HashMap::new();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| Error::sql(&self.path, e))?;
        for key in keys {
            identity(&mut buf, &key.name, key.labels());
            let ident = buf.as_slice();
            if let Some(&(id, kind)) = self.registry.by_identity.get(ident).or_else(|| pending.get(ident)) {
                out.push(if kind == key.kind {
                    Registration::Registered(id)
                } else {
                    Registration::Rejected(RejectReason::KindConflict)
                });
                continue;
            }
            let name_count = self.registry.per_name.get(&key.name).copied().unwrap_or(0)
                + per_name_added.get(key.name.as_str()).copied().unwrap_or(0);
            if name_count >= self.opts.max_series_per_name {
                out.push(Registration::Rejected(RejectReason::PerNameLimit));
                continue;
            }
            if self.registry.kinds.len() + added.len() >= self.opts.max_series {
                out.push(Registration::Rejected(RejectReason::TotalLimit));
                continue;
            }
            let labels = key.labels_text();
            tx.prepare_cached("INSERT OR IGNORE INTO labelset (labels) VALUES (?1)")
                .and_then(|mut s| s.execute([&labels]))
                .map_err(|e| Error::sql(&self.path, e))?;
            let labelset: i64 = tx
                .prepare_cached("SELECT id FROM labelset WHERE labels = ?1")
                .and_then(|mut s| s.query_row([&labels], |r| r.get(0)))
                .map_err(|e| Error::sql(&self.path, e))?;
            tx.prepare_cached(
                "INSERT INTO series (name, kind, unit, labelset_id, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| s.execute(params![key.name, key.kind.code(), key.unit, labelset, now_ms]))
            .map_err(|e| Error::sql(&self.path, e))?;
            let id = SeriesId(tx.last_insert_rowid());
            *per_name_added.entry(key.name.as_str()).or_default() += 1;
            pending.insert(buf.as_slice().into(), (id, key.kind));
            added.push((&key.name, id, key.kind));
            out.push(Registration::Registered(id));
        }
        tx.commit().map_err(|e| Error::sql(&self.path, e))?;
        for (name, id, kind) in added {
            match self.registry.per_name.get_mut(name) {
                Some(n) => *n += 1,
                None => {
                    self.registry.per_name.insert(name.to_owned(), 1);
                }
            }
            self.registry.kinds.insert(id, kind);
        }
        self.registry.by_identity.extend(pending);
        Ok(out)
    }

    /// The kind a registered series was created with.
    pub(crate) fn kind_registered(&self, series: SeriesId) -> Option<Kind> {
        self.registry.kinds.get(&series).copied()
    }
}
