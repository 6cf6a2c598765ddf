//! The series registry: every series' identity (name and labels), kind and id, held in
//! memory by the writer so a flush looks its keys up without touching the file, and the
//! cardinality limits new series are checked against.

use std::collections::HashMap;
use std::hash::BuildHasher as _;

use rusqlite::{TransactionBehavior, params};

use crate::codec::put_varint;
use crate::error::{Error, Result};
use crate::grow::reserve_by_eighths;
use crate::model::{Kind, Registration, RejectReason, SeriesId, SeriesKey, SharedStr};
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

/// Every series' identity, kind and id, about 50 bytes a series. Series are never deleted,
/// so their ids (SQLite row ids) are dense: what is held of each is found by its id in a
/// vector, and the identities through a table of handles (a series' id, for those in the
/// vector). (A map of boxed identities to ids and one of ids to kinds took 107 bytes a
/// series, and a SipHash lookup per point written.) An id the vector does not reach (below
/// zero, or far past the others: a file written by something else) is held in a list and
/// found through a map, and so is every id after it, since SQLite numbers on from the
/// highest.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    /// Every identity's bytes, back to back…
    arena: Vec<u8>,
    /// …where each is and its kind, by id…
    by_id: Vec<Held>,
    /// …or for the ids the vector does not reach, in the order held, with their positions
    /// by id…
    far: Vec<(SeriesId, Held)>,
    far_at: hashbrown::HashMap<SeriesId, u32, foldhash::fast::RandomState>,
    /// …and the handles of all by the hash of their identity: an id of the vector, or
    /// [`FAR`] plus a position in `far`.
    index: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    count: usize,
    per_name: HashMap<SharedStr, usize>,
}

/// Handles from here on are positions in [`Registry::far`]; ids under it may be in the vector.
const FAR: u32 = 1 << 31;
/// How many ids past the series held the vector stretches to.
const DENSE_SLACK: usize = 4096;

impl Registry {
    fn held(&self, handle: u32) -> Held {
        if handle < FAR {
            self.by_id.get(handle as usize).copied().unwrap_or(NONE)
        } else {
            self.far.get((handle - FAR) as usize).map_or(NONE, |f| f.1)
        }
    }

    fn id(&self, handle: u32) -> SeriesId {
        if handle < FAR { SeriesId(i64::from(handle)) } else { self.far[(handle - FAR) as usize].0 }
    }

    fn bytes(&self, handle: u32) -> &[u8] {
        let h = self.held(handle);
        &self.arena[h.at as usize..h.at as usize + h.len as usize]
    }

    /// The handle of a series held.
    fn handle(&self, id: SeriesId) -> Option<u32> {
        if let Ok(slot) = u32::try_from(id.0)
            && self.by_id.get(slot as usize).is_some_and(|h| h.kind.is_some())
        {
            return Some(slot);
        }
        self.far_at.get(&id).map(|&at| FAR + at)
    }

    /// The kind of a series held.
    pub(crate) fn kind(&self, id: SeriesId) -> Option<Kind> {
        self.held(self.handle(id)?).kind
    }

    fn find(&self, ident: &[u8]) -> Option<(SeriesId, Kind)> {
        let hash = self.hasher.hash_one(ident);
        let handle = *self.index.find(hash, |&h| self.bytes(h) == ident)?;
        Some((self.id(handle), self.held(handle).kind?))
    }

    /// What [`Registry::undo`] goes back to.
    fn mark(&self) -> (usize, usize, usize) {
        (self.arena.len(), self.far.len(), self.count)
    }

    /// Let go of the series held since `mark` (their handles in `added`).
    fn undo(&mut self, (arena_len, far_len, count): (usize, usize, usize), added: &[u32]) {
        for &handle in added {
            let hash = self.hasher.hash_one(self.bytes(handle));
            if let Ok(entry) = self.index.find_entry(hash, |&x| x == handle) {
                entry.remove();
            }
            if handle < FAR {
                self.by_id[handle as usize] = NONE;
            }
        }
        for (id, _) in self.far.drain(far_len..) {
            self.far_at.remove(&id);
        }
        self.arena.truncate(arena_len);
        self.count = count;
    }

    /// Hold a series; its handle, or `None` (nothing held) past 4 GiB of identities or 2^31
    /// far ids.
    fn hold(&mut self, ident: &[u8], id: SeriesId, kind: Kind) -> Option<u32> {
        let at = u32::try_from(self.arena.len()).ok()?;
        let len = u32::try_from(ident.len()).ok()?;
        let held = Held { at, len, kind: Some(kind) };
        let handle = match u32::try_from(id.0) {
            Ok(slot) if (slot as usize) < self.by_id.len() => {
                self.by_id[slot as usize] = held;
                slot
            }
            Ok(slot) if slot < FAR && (slot as usize) <= self.count + DENSE_SLACK => {
                let more = slot as usize + 1 - self.by_id.len();
                reserve_by_eighths(&mut self.by_id, more);
                self.by_id.resize(slot as usize, NONE);
                self.by_id.push(held);
                slot
            }
            _ => {
                let at_far = u32::try_from(self.far.len()).ok().filter(|&n| n < FAR)?;
                reserve_by_eighths(&mut self.far, 1);
                self.far.push((id, held));
                self.far_at.insert(id, at_far);
                FAR + at_far
            }
        };
        reserve_by_eighths(&mut self.arena, ident.len());
        self.arena.extend_from_slice(ident);
        let hash = self.hasher.hash_one(ident);
        // Out of `self` while it grows: growing rehashes what it holds, through `self`.
        let mut index = std::mem::take(&mut self.index);
        let this = &*self;
        index.insert_unique(hash, handle, |&h| this.hasher.hash_one(this.bytes(h)));
        self.index = index;
        self.count += 1;
        Some(handle)
    }
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
            // Two rows of one identity (a file written by something else): the first holds.
            if self.registry.find(&buf).is_some() {
                continue;
            }
            *self.registry.per_name.entry(name.into()).or_default() += 1;
            if self.registry.hold(&buf, id, kind).is_none() {
                return Err(Error::Corrupt {
                    path: self.path.clone(),
                    detail: "more series than the registry can hold".into(),
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
        // New series are held at once (a key given twice in one call is found), and let go
        // again if the transaction fails: a map of the batch's identities took 10 MB when
        // the agent's first flush brought 90 000 series.
        let mark = self.registry.mark();
        let mut added: Vec<u32> = Vec::new();
        let mut per_name_added: HashMap<&SharedStr, usize> = HashMap::new();
        let result = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| Error::sql(&self.path, e))
            .and_then(|tx| {
                let out =
                    register_each(&tx, &mut self.registry, &self.opts, keys, now_ms, &mut added, &mut per_name_added)
                        .map_err(|e| e.at(&self.path))?;
                tx.commit().map_err(|e| Error::sql(&self.path, e))?;
                Ok(out)
            });
        if result.is_err() {
            self.registry.undo(mark, &added);
            return result;
        }
        for (name, n) in per_name_added {
            // The name the key holds, shared rather than copied.
            *self.registry.per_name.entry(name.clone()).or_default() += n;
        }
        result
    }
}

/// An error of [`register_each`]: SQLite's (the path is the caller's) or a refusal.
enum Failed {
    Sql(rusqlite::Error),
    Other(Error),
}

impl Failed {
    fn at(self, path: &std::path::Path) -> Error {
        match self {
            Failed::Sql(e) => Error::sql(path, e),
            Failed::Other(e) => e,
        }
    }
}

impl From<rusqlite::Error> for Failed {
    fn from(e: rusqlite::Error) -> Self {
        Failed::Sql(e)
    }
}

/// [`Writer::register_all`]'s work inside its transaction: each key's registration, new
/// series inserted and held (their ids in `added`, their names counted in `per_name_added`).
fn register_each<'k>(
    tx: &rusqlite::Transaction<'_>,
    registry: &mut Registry,
    opts: &crate::open::StoreOptions,
    keys: impl IntoIterator<Item = &'k SeriesKey>,
    now_ms: i64,
    added: &mut Vec<u32>,
    per_name_added: &mut HashMap<&'k SharedStr, usize>,
) -> std::result::Result<Vec<Registration>, Failed> {
    let keys = keys.into_iter();
    let mut out = Vec::with_capacity(keys.size_hint().0);
    let mut buf = Vec::new();
    // Label sets' ids met in this call: new series mostly repeat a few sets (a host's or a
    // service's tags), and each set costs two statements the first time only. (Sets are
    // never deleted, and nothing else writes inside this transaction.)
    let mut labelsets: HashMap<crate::labels::Labels, i64> = HashMap::new();
    for key in keys {
        identity(&mut buf, &key.name, key.labels());
        if let Some((id, kind)) = registry.find(&buf) {
            out.push(if kind == key.kind {
                Registration::Registered(id)
            } else {
                Registration::Rejected(RejectReason::KindConflict)
            });
            continue;
        }
        let name_count = registry.per_name.get(&key.name).copied().unwrap_or(0)
            + per_name_added.get(&key.name).copied().unwrap_or(0);
        if name_count >= opts.max_series_per_name {
            out.push(Registration::Rejected(RejectReason::PerNameLimit));
            continue;
        }
        if registry.count >= opts.max_series {
            out.push(Registration::Rejected(RejectReason::TotalLimit));
            continue;
        }
        // By the set itself (its text, JSON, is made only for a set not met yet).
        let labelset = match labelsets.get(&key.labels) {
            Some(&id) => id,
            None => {
                let labels = key.labels_text();
                tx.prepare_cached("INSERT OR IGNORE INTO labelset (labels) VALUES (?1)")?.execute([&labels])?;
                let id: i64 = tx
                    .prepare_cached("SELECT id FROM labelset WHERE labels = ?1")?
                    .query_row([&labels], |r| r.get(0))?;
                labelsets.insert(key.labels.clone(), id);
                id
            }
        };
        tx.prepare_cached(
            "INSERT INTO series (name, kind, unit, labelset_id, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![key.name.as_str(), key.kind.code(), key.unit.as_str(), labelset, now_ms])?;
        let id = SeriesId(tx.last_insert_rowid());
        let Some(handle) = registry.hold(&buf, id, key.kind) else {
            return Err(Failed::Other(Error::Invalid("more series than the registry can hold".into())));
        };
        added.push(handle);
        *per_name_added.entry(&key.name).or_default() += 1;
        out.push(Registration::Registered(id));
    }
    Ok(out)
}
