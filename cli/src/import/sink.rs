//! Where imported points go: registered in the store in batches and written in bounded
//! transactions, so an import of any size holds at most one batch in memory.

use std::collections::HashMap;
use std::path::Path;

use perfstore::{Registration, Sample, SeriesId, SeriesKey, StoreOptions, Write, Writer};

use super::Summary;

/// Points written per transaction.
const BATCH: usize = 50_000;

#[derive(Debug, Clone, Copy)]
enum Slot {
    Known(SeriesId),
    Refused,
    /// Index into `new_keys`, registered at the next flush.
    New(usize),
}

/// Open the store for writing; a running agent holding it gets a message that says what to
/// do instead.
pub(crate) fn open_writer(db: &Path) -> anyhow::Result<Writer> {
    match Writer::open(db, StoreOptions::default()) {
        Err(e @ perfstore::Error::Locked { .. }) => Err(anyhow::anyhow!(
            "{e}: stop the agent (`perfagent stop --db {}`) and import again, or send the data to the running \
             agent instead (StatsD lines with |T timestamps keep their times); nothing was imported",
            db.display()
        )),
        r => Ok(r?),
    }
}

/// The store side of an import.
#[derive(Debug)]
pub(crate) struct Sink {
    db: std::path::PathBuf,
    /// Opened with the first point, so an input with nothing to import never touches the store.
    writer: Option<Writer>,
    now_ms: i64,
    slots: HashMap<SeriesKey, Slot>,
    new_keys: Vec<SeriesKey>,
    pending: Vec<(Slot, i64, Sample)>,
    /// Series that received points.
    written: std::collections::HashSet<SeriesId>,
}

impl Sink {
    /// A sink into the store at `db` (opened for writing, taking the writer lock, with the
    /// first point).
    pub(crate) fn open(db: &Path, now_ms: i64) -> anyhow::Result<Self> {
        Ok(Self {
            db: db.to_owned(),
            writer: None,
            now_ms,
            slots: HashMap::new(),
            new_keys: Vec::new(),
            pending: Vec::with_capacity(BATCH),
            written: std::collections::HashSet::new(),
        })
    }

    /// Add one point of `key`; a full batch is written.
    pub(crate) fn push(
        &mut self,
        key: &SeriesKey,
        ts_ms: i64,
        sample: Sample,
        summary: &mut Summary,
    ) -> anyhow::Result<()> {
        if self.writer.is_none() {
            self.writer = Some(open_writer(&self.db)?);
        }
        let slot = match self.slots.get(key) {
            Some(s) => *s,
            None => {
                self.new_keys.push(key.clone());
                let s = Slot::New(self.new_keys.len() - 1);
                self.slots.insert(key.clone(), s);
                s
            }
        };
        self.pending.push((slot, ts_ms, sample));
        if self.pending.len() >= BATCH {
            self.flush(summary)?;
        }
        Ok(())
    }

    /// Record events (a StatsD capture's errors, kept as operations' last errors).
    pub(crate) fn events(&mut self, events: &[perfstore::Event], summary: &mut Summary) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        if self.writer.is_none() {
            self.writer = Some(open_writer(&self.db)?);
        }
        if let Some(w) = self.writer.as_mut() {
            w.record_events(events)?;
            summary.events += events.len();
        }
        Ok(())
    }

    /// Register new series and write what is pending, in two transactions.
    pub(crate) fn flush(&mut self, summary: &mut Summary) -> anyhow::Result<()> {
        let Some(writer) = self.writer.as_mut() else { return Ok(()) };
        let regs =
            if self.new_keys.is_empty() { Vec::new() } else { writer.register_all(&self.new_keys, self.now_ms)? };
        let mut resolved: Vec<Slot> = Vec::with_capacity(regs.len());
        for (key, reg) in self.new_keys.drain(..).zip(regs) {
            let slot = match reg {
                Registration::Registered(id) => Slot::Known(id),
                Registration::Rejected(reason) => {
                    eprintln!(
                        "the store refused {} ({}); its points are skipped",
                        crate::render::clean(&key.to_string()),
                        reason.as_str()
                    );
                    Slot::Refused
                }
            };
            self.slots.insert(key, slot);
            resolved.push(slot);
        }
        let mut writes = Vec::with_capacity(self.pending.len());
        for (slot, ts_ms, sample) in self.pending.drain(..) {
            let slot = match slot {
                Slot::New(i) => resolved[i],
                s => s,
            };
            match slot {
                Slot::Known(id) => {
                    self.written.insert(id);
                    writes.push(Write { series: id, ts_ms, sample });
                }
                _ => *summary.skipped.entry("points of series the store refused".into()).or_default() += 1,
            }
        }
        if !writes.is_empty() {
            summary.points += writer.write(&writes)?.points;
        }
        summary.series = self.written.len();
        Ok(())
    }

    /// Write the rest, run the store's maintenance as of `now` (so history older than the raw
    /// retention is rolled into the one-minute and one-hour tiers now, as the agent would at
    /// its next maintenance, and queries over it read the small tiers), and close the store.
    pub(crate) fn finish(mut self, summary: &mut Summary) -> anyhow::Result<()> {
        self.flush(summary)?;
        if let Some(mut w) = self.writer.take() {
            summary.maintenance = Some(w.maintain(self.now_ms)?);
            w.close()?;
        }
        Ok(())
    }
}
