//! The series registry: every series' identity (name and labels), kind and id, held in
//! memory by the writer so a flush looks its keys up without touching the file, and the
//! cardinality limits new series are checked against.

use std::collections::HashMap;
use std::hash::BuildHasher as _;

use rusqlite::{TransactionBehavior, params};

use crate::codec::put_varint;
use crate::error::{Error, Result};
use crate::model::{Kind, Registration, RejectReason, SeriesId, SeriesKey};
use crate::write::Writer;

/// Write the identity of `name` and `labels` into `out` (cleared first): each string after
/// its length as a varint.
fn identity<'a>(out: &mut Vec<u8>, name: &str, labels: impl Iterator<Item = (&'a str, &'a str)>) {
    out.clear();
    for s in std::iter::once(name).chain(labels.flat_map(|(k, v)| [k, v])) {
        put_varint(out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
}

/// Where a series' identity is in the registry's arena, and its kind.
#[derive(Debug, Clone, Copy)]
struct Held {
    at: u32,
    len: u32,
    kind: Option<Kind>,
}

const NONE: Held = Held { at: 0, len: 0, kind: None };

/// Every series' identity, kind and id, about 60 bytes a series. Series are never deleted,
/// so their ids (SQLite row ids) are dense: what is held of each is found by its id, and the
/// identities are looked up through a table of ids. (A map of boxed identities to ids and
/// one of ids to kinds took 107 bytes a series, and a SipHash lookup per point written.)
#[derive(Debug, Default)]
pub(crate) struct Registry {
    /// Every identity's bytes, back to back…
    arena: Vec<u8>,
    /// …where each is and its kind, by id…
    by_id: Vec<Held>,
    /// …and the ids by the hash of their identity.
    index: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    count: usize,
    per_name: HashMap<String, usize>,
}

impl Registry {
    fn bytes(&self, id: u32) -> &[u8] {
        let h = self.by_id[id as usize];
        &self.arena[h.at as usize..h.at as usize + h.len as usize]
    }

    fn find(&self, ident: &[u8]) -> Option<(SeriesId, Kind)> {
        let hash = self.hasher.hash_one(ident);
        let id = *self.index.find(hash, |&id| self.bytes(id) == ident)?;
        Some((SeriesId(i64::from(id)), self.by_id[id as usize].kind?))
    }

    /// Hold a series; false (and nothing held) when its id does not fit the tables.
    fn hold(&mut self, ident: &[u8], id: SeriesId, kind: Kind) -> bool {
        let (Ok(slot), Ok(at), Ok(len)) =
            (u32::try_from(id.0), u32::try_from(self.arena.len()), u32::try_from(ident.len()))
        else {
            return false;
        };
        if slot as usize >= self.by_id.len() {
            self.by_id.resize(slot as usize + 1, NONE);
        }
        self.arena.extend_from_slice(ident);
        self.by_id[slot as usize] = Held { at, len, kind: Some(kind) };
        let hash = self.hasher.hash_one(ident);
        let (arena, by_id, hasher) = (&self.arena, &self.by_id, &self.hasher);
        self.index.insert_unique(hash, slot, |&id| {
            let h = by_id[id as usize];
            hasher.hash_one(&arena[h.at as usize..h.at as usize + h.len as usize])
        });
        self.count += 1;
        true
    }
}

type Pending = hashbrown::HashMap<Box<[u8]>, (SeriesId, Kind), foldhash::fast::RandomState>;

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
            if !self.registry.hold(&buf, id, kind) {
                return Err(Error::Corrupt {
                    path: self.path.clone(),
                    detail: format!("series id {id} is out of range"),
                });
            }
        }
        Ok(())
    }

    /// Number of registered series.
    pub fn series_count(&self) -> usize {
        self.registry.count
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
        let mut pending = Pending::default();
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
            if let Some((id, kind)) = self.registry.find(ident).or_else(|| pending.get(ident).copied()) {
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
            if self.registry.count + added.len() >= self.opts.max_series {
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
            if u32::try_from(id.0).is_err() {
                return Err(Error::Invalid(format!("{}: series ids are used up (next {id})", self.path.display())));
            }
            *per_name_added.entry(key.name.as_str()).or_default() += 1;
            pending.insert(buf.as_slice().into(), (id, key.kind));
            added.push((&key.name, id, key.kind));
            out.push(Registration::Registered(id));
        }
        tx.commit().map_err(|e| Error::sql(&self.path, e))?;
        for (name, _, _) in added {
            match self.registry.per_name.get_mut(name) {
                Some(n) => *n += 1,
                None => {
                    self.registry.per_name.insert(name.to_owned(), 1);
                }
            }
        }
        for (ident, (id, kind)) in pending {
            // Checked before the insert above.
            self.registry.hold(&ident, id, kind);
        }
        Ok(out)
    }

    /// The kind a registered series was created with.
    pub(crate) fn kind_registered(&self, series: SeriesId) -> Option<Kind> {
        let slot = usize::try_from(series.0).ok()?;
        self.registry.by_id.get(slot)?.kind
    }
}
