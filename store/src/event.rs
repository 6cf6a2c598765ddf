//! The bounded event log: the last errors of each operation (never a metric label).

use rusqlite::{TransactionBehavior, params};

use crate::error::{Error, Result};
use crate::model::{EVENT_MESSAGE_MAX_CHARS, Event, EventKind};
use crate::query::{Snapshot, TimeRange};
use crate::write::Writer;

impl Writer {
    /// Append events to the log, keeping the newest [`crate::StoreOptions::events_per_op`]
    /// per (service, operation, kind).
    pub fn record_events(&mut self, events: &[Event]) -> Result<()> {
        let keep = self.opts.events_per_op as i64;
        for ev in events {
            crate::tier::check_time(|| format!("event of {}", ev.op), ev.ts_ms)?;
        }
        let path = self.path.clone();
        let tx =
            self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| Error::sql(&path, e))?;
        for ev in events {
            let message: String = ev.message.chars().take(EVENT_MESSAGE_MAX_CHARS).collect();
            let kind = ev.kind.as_str();
            tx.prepare_cached("INSERT INTO event (ts_ms, service, op, kind, message) VALUES (?1, ?2, ?3, ?4, ?5)")
                .and_then(|mut s| s.execute(params![ev.ts_ms, ev.service, ev.op, kind, message]))
                .map_err(|e| Error::sql(&path, e))?;
            tx.prepare_cached(
                "DELETE FROM event WHERE service = ?1 AND op = ?2 AND kind = ?3 AND id NOT IN \
                 (SELECT id FROM event WHERE service = ?1 AND op = ?2 AND kind = ?3 ORDER BY ts_ms DESC, id DESC LIMIT ?4)",
            )
            .and_then(|mut s| s.execute(params![ev.service, ev.op, kind, keep]))
            .map_err(|e| Error::sql(&path, e))?;
        }
        tx.commit().map_err(|e| Error::sql(&path, e))?;
        self.after_commit();
        Ok(())
    }
}

impl Snapshot<'_> {
    /// The latest event of `kind` per (service, operation) within `range`.
    pub fn last_events(&self, kind: EventKind, range: TimeRange) -> Result<Vec<Event>> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT ts_ms, service, op, message FROM event e WHERE kind = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 \
                 AND id = (SELECT id FROM event f WHERE f.service = e.service AND f.op = e.op AND f.kind = e.kind \
                           AND f.ts_ms >= ?2 AND f.ts_ms < ?3 ORDER BY f.ts_ms DESC, f.id DESC LIMIT 1) \
                 ORDER BY service, op",
            )
            .map_err(|e| self.sql(e))?;
        stmt.query_map(params![kind.as_str(), range.start_ms, range.end_ms], |r| {
            Ok(Event { ts_ms: r.get(0)?, service: r.get(1)?, op: r.get(2)?, kind, message: r.get(3)? })
        })
        .and_then(|r| r.collect())
        .map_err(|e| self.sql(e))
    }
}
