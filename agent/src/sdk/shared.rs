//! What the SDK's handles share with its background thread: the registry of series the app
//! records into, the per-thread value rings, the last errors, and how everything recorded since
//! the last flush becomes StatsD lines of the convention.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, RwLock};

use perfstore::convention::tag;

use super::Operation;
use super::buffer::{self, Gauge, Striped, Values};
use super::forward::Counters;

/// Largest datagram the SDK sends when forwarding (the daemon reads 9 KiB).
const DATAGRAM: usize = 8_192;

/// Values handed to the aggregator without text: (a one-value line naming the series, values).
pub(crate) type Direct = Vec<(String, Vec<f64>)>;

/// Last-error events waiting for the next flush: (op, message, Unix seconds).
pub(crate) type Errors = Vec<(String, String, i64)>;

/// What every handle shares with the background thread.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) service: String,
    pub(crate) clock: quanta::Clock,
    pub(crate) values: Values,
    pub(crate) registry: Mutex<Registry>,
    pub(crate) errors: Mutex<Errors>,
    pub(crate) ops: RwLock<HashMap<String, Operation>>,
    /// Forward mode's sent and failed counts.
    pub(crate) forward: Counters,
    /// The Prometheus recorder's handle, when [`super::Perf::install_recorder`] installed one.
    #[cfg(feature = "prometheus")]
    pub(crate) prometheus: Mutex<Option<metrics_exporter_prometheus::PrometheusHandle>>,
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    counters: Vec<(String, String, Arc<Striped>)>,
    gauges: Vec<(String, String, Arc<Gauge>)>,
    /// (name, tags, StatsD type).
    dists: Vec<(String, String, &'static str)>,
    /// Levels sent as gauges when they change: (name, tags, level, last sent).
    levels: Vec<(String, String, Arc<Striped>, i64)>,
    index: HashMap<(u8, String, String), usize>,
    /// Operation names by marker id.
    pub(crate) op_names: Vec<String>,
}

/// The handle registered for (`kind`, name, tags) in `list`, created on first use.
fn intern<T: Default>(
    index: &mut HashMap<(u8, String, String), usize>,
    list: &mut Vec<(String, String, Arc<T>)>,
    kind: u8,
    name: &str,
    tags: String,
) -> Arc<T> {
    let key = (kind, clean(name), tags);
    if let Some(&i) = index.get(&key) {
        return list[i].2.clone();
    }
    let h = Arc::new(T::default());
    list.push((key.1.clone(), key.2.clone(), h.clone()));
    index.insert(key, list.len() - 1);
    h
}

/// Names and tag values safe inside a StatsD line.
fn clean(s: &str) -> String {
    s.chars().map(|c| if matches!(c, ':' | '|' | '@' | '#' | ',' | '\n' | '\r' | ' ') { '_' } else { c }).collect()
}

impl Shared {
    /// DogStatsD tags for `pairs` (sorted) plus this service.
    pub(crate) fn tags(&self, pairs: &[(&str, &str)]) -> String {
        let mut v: Vec<(String, String)> = pairs.iter().map(|(k, v)| (clean(k), clean(v))).collect();
        v.retain(|(k, _)| k != tag::SERVICE);
        v.push((tag::SERVICE.into(), clean(&self.service)));
        v.sort();
        v.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(",")
    }

    pub(crate) fn counter(&self, name: &str, tags: String) -> Arc<Striped> {
        let mut r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let r = &mut *r;
        intern(&mut r.index, &mut r.counters, 0, name, tags)
    }

    pub(crate) fn gauge(&self, name: &str, tags: String) -> Arc<Gauge> {
        let mut r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let r = &mut *r;
        intern(&mut r.index, &mut r.gauges, 1, name, tags)
    }

    pub(crate) fn level(&self, name: &str, tags: String) -> Arc<Striped> {
        let mut r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let l = Arc::new(Striped::default());
        r.levels.push((clean(name), tags, l.clone(), 0));
        l
    }

    /// A distribution series id; `ty` is `ms` (milliseconds) or `h`.
    pub(crate) fn dist(&self, name: &str, tags: String, ty: &'static str) -> u32 {
        let mut r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let key = (2u8, clean(name), tags);
        if let Some(&i) = r.index.get(&key) {
            return i as u32;
        }
        r.dists.push((key.1.clone(), key.2.clone(), ty));
        let i = r.dists.len() - 1;
        r.index.insert(key, i);
        i as u32
    }

    pub(crate) fn error(&self, op: &str, message: &str) {
        let mut e = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        // Only the latest per operation matters; keep the queue small under error storms.
        e.retain(|(o, _, _)| o != op);
        let text: String = message.chars().take(perfstore::EVENT_MESSAGE_MAX_CHARS).collect();
        e.push((op.to_owned(), text, crate::clock::now_ms() / 1000));
    }

    /// Everything recorded since the last call, as StatsD lines in datagrams of at most
    /// [`DATAGRAM`] bytes; with `direct`, timer and histogram values go there instead, as
    /// (a line naming their series, the values).
    pub(crate) fn take_lines(&self, values: &mut Vec<buffer::Value>, mut direct: Option<&mut Direct>) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut cur = String::new();
        let mut emit = |line: &str, out: &mut Vec<Vec<u8>>| {
            if !cur.is_empty() && cur.len() + line.len() + 1 > DATAGRAM {
                out.push(std::mem::take(&mut cur).into_bytes());
            }
            cur.push_str(line);
            cur.push('\n');
        };
        let mut r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        for (name, tags, l, last) in &mut r.levels {
            let v = l.level();
            if v != *last {
                *last = v;
                emit(&format!("{name}:{v}|g|#{tags}"), &mut out);
            }
        }
        for (name, tags, c) in &r.counters {
            let n = c.take();
            if n > 0 {
                emit(&format!("{name}:{n}|c|#{tags}"), &mut out);
            }
        }
        for (name, tags, g) in &r.gauges {
            if let Some(v) = g.take() {
                emit(&format!("{name}:{v}|g|#{tags}"), &mut out);
            }
        }
        // Values by series: handed over as they are when embedded (no formatting and
        // re-parsing), else several per line (`name:1:2:3|ms`) under the datagram size.
        values.sort_by_key(|v| v.0);
        let mut i = 0;
        while i < values.len() {
            let id = values[i].0;
            let end = i + values[i..].iter().take_while(|v| v.0 == id).count();
            let Some((name, tags, ty)) = r.dists.get(id as usize) else {
                i = end;
                continue;
            };
            let suffix = format!("|{ty}|#{tags}");
            if let Some(direct) = direct.as_mut() {
                direct.push((format!("{name}:0{suffix}"), values[i..end].iter().map(|v| v.1).collect()));
                i = end;
                continue;
            }
            while i < end {
                let mut line = name.clone();
                while i < end {
                    let mut v = String::new();
                    let _ = write!(v, ":{}", values[i].1);
                    if line.len() + v.len() + suffix.len() > DATAGRAM - 1 && line.len() > name.len() {
                        break;
                    }
                    line.push_str(&v);
                    i += 1;
                }
                line.push_str(&suffix);
                emit(&line, &mut out);
            }
        }
        values.clear();
        drop(r);
        let errors = std::mem::take(&mut *self.errors.lock().unwrap_or_else(|e| e.into_inner()));
        for (op, text, ts) in errors {
            let title = format!("{op} failed");
            let text = text.replace('\n', "\\n");
            let tags = self.tags(&[(tag::OP, &op)]);
            emit(&format!("_e{{{},{}}}:{title}|{text}|d:{ts}|t:error|#{tags}", title.len(), text.len()), &mut out);
        }
        if !cur.is_empty() {
            out.push(cur.into_bytes());
        }
        out
    }
}
