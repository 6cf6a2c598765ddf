//! `/metrics`' state and pages: accumulation, layout, pieces and escaping.

use super::*;
use perfstore::Distribution;

#[test]
fn a_series_that_expires_and_returns_keeps_counting_and_its_old_key_is_let_go() {
    let mut e = Exposition::default();
    let key = || SeriesKey::new("api", "op.calls", Kind::Counter).label("op", "vm.list");
    let first = Arc::new(key());
    e.add(&[(Arc::clone(&first), 0, Sample::Counter(2.0))]);
    e.add(&[(Arc::clone(&first), 10, Sample::Counter(1.0))]);
    // The aggregator dropped the series; it comes back with a new shared key.
    let weak_first = Arc::downgrade(&first);
    drop(first);
    let again = Arc::new(key());
    e.add(&[(Arc::clone(&again), 20, Sample::Counter(1.0))]);
    assert!(weak_first.upgrade().is_none(), "the first key is let go");
    assert_eq!(e.find_by_ptr(&again), Some(0), "the new key is found by its address");
    // A backfilled point's one-off key, then the live key again.
    e.add(&[(Arc::new(key()), 5, Sample::Counter(3.0))]);
    e.add(&[(Arc::clone(&again), 30, Sample::Counter(1.0))]);
    let other = Arc::new(SeriesKey::new("api", "op.other", Kind::Counter));
    for i in 0..70 {
        e.add(&[(Arc::clone(&other), 30 + i, Sample::Counter(1.0))]);
    }
    let text = e.render();
    assert!(text.contains("op_calls_total{op=\"vm.list\",service=\"api\"} 8\n"), "{text}");
    assert!(text.contains("op_other_total{service=\"api\"} 70\n"), "{text}");
    assert_eq!(e.series.len(), 2);
    assert_eq!((e.by_key.len(), e.by_ptr.len()), (2, 2), "one entry a series in each table");
    assert_eq!(e.find_by_ptr(&again), Some(0));
    assert_eq!(e.find_by_ptr(&other), Some(1));
}

#[test]
fn a_large_page_comes_in_pieces_that_add_up_to_it() {
    let mut e = Exposition::default();
    let points: Vec<_> = (0..2000)
        .map(|i| {
            let kind = if i % 2 == 0 { Kind::Counter } else { Kind::Distribution };
            // One family of 1000 counters, five of 200 histograms (about 220 KB each).
            let name = if kind == Kind::Counter { "op.calls".to_owned() } else { format!("op{}.duration", i % 5) };
            let key = SeriesKey::new("api", &name, kind).label("host", &format!("vm-{i}"));
            let sample = match kind {
                Kind::Counter => Sample::Counter(f64::from(i)),
                _ => Sample::Distribution(Box::new(Distribution::from_values(&[0.001 * f64::from(i), 3.0]))),
            };
            (Arc::new(key.unit(if kind == Kind::Counter { "" } else { "s" })), 0, sample)
        })
        .collect();
    e.add(&points);
    e.set_own("# agent's own\n".into());
    let pieces: Vec<String> = e.page().collect();
    let page = pieces.concat();
    assert!(page.starts_with("# agent's own\n"), "{}", &page[..100]);
    assert!(page.ends_with("perfagent_name_collisions_total 0\n"), "{}", &page[page.len() - 100..]);
    assert!(page.lines().count() > 1000 * 16 + 1000, "every bucket line is there");
    assert_eq!(page.matches("# TYPE ").count(), 7, "six families and the collisions counter");
    assert_eq!(
        page.matches("# TYPE op1_duration_seconds histogram\n").count(),
        1,
        "a family split across pieces is named once"
    );
    // Never the whole page at once: pieces of about 64 KiB, each of whole lines.
    assert!(pieces.len() > 10, "{} pieces", pieces.len());
    for p in &pieces[1..] {
        assert!(p.len() < PIECE + 4096, "{}", p.len());
        assert!(p.ends_with('\n'));
    }
}

#[test]
fn a_series_added_after_a_scrape_takes_its_place_in_the_next() {
    let mut e = Exposition::default();
    let counter = |name: &str, op: &str| Arc::new(SeriesKey::new("api", name, Kind::Counter).label("op", op));
    e.add(&[(counter("op.calls", "b"), 0, Sample::Counter(1.0)), (counter("op.zzz", "a"), 0, Sample::Counter(1.0))]);
    let first = e.render();
    assert_eq!(e.layout.lock().unwrap().slots, 2, "the order is kept for the next page");
    // One that sorts first in its family, and a new family between the two.
    e.add(&[(counter("op.calls", "a"), 10, Sample::Counter(5.0)), (counter("op.m", "a"), 10, Sample::Counter(7.0))]);
    let second = e.render();
    assert_ne!(first, second);
    let lines: Vec<&str> = second.lines().filter(|l| l.starts_with("op_")).collect();
    assert_eq!(
        lines,
        [
            "op_calls_total{op=\"a\",service=\"api\"} 5",
            "op_calls_total{op=\"b\",service=\"api\"} 1",
            "op_m_total{op=\"a\",service=\"api\"} 7",
            "op_zzz_total{op=\"a\",service=\"api\"} 1",
        ]
    );
    // Values move on; the kept order shows them.
    e.add(&[(counter("op.m", "a"), 20, Sample::Counter(1.0))]);
    assert!(e.render().contains("op_m_total{op=\"a\",service=\"api\"} 8\n"));
    assert_eq!(e.render().matches("# TYPE ").count(), 4, "three families and the collisions counter");
}

#[test]
fn a_page_being_sent_shows_the_moment_it_was_taken() {
    let mut e = Exposition::default();
    let d = Arc::new(SeriesKey::new("api", "op.duration", Kind::Distribution).unit("s"));
    let dist = || Sample::Distribution(Box::new(Distribution::from_values(&[0.02])));
    e.add(&[(Arc::clone(&d), 0, dist())]);
    let page = e.page();
    // Flushes go on while the page is sent.
    e.add(&[(Arc::clone(&d), 10, dist())]);
    let then: String = page.collect();
    assert!(then.contains("op_duration_seconds_count{service=\"api\"} 1\n"), "{then}");
    assert!(e.render().contains("op_duration_seconds_count{service=\"api\"} 2\n"));
}

#[test]
fn counters_accumulate_histograms_bucket_and_labels_escape() {
    let mut e = Exposition::default();
    let c = Arc::new(SeriesKey::new("api", "op.retries", Kind::Counter).label("op", "vm \"list\"\n"));
    let d = Arc::new(SeriesKey::new("api", "op.duration", Kind::Distribution).unit("s"));
    let dist = Distribution::from_values(&[0.003, 0.02, 0.02, 0.3, 20.0]);
    e.add(&[(c.clone(), 0, Sample::Counter(2.5)), (d.clone(), 0, Sample::Distribution(Box::new(dist.clone())))]);
    e.add(&[(c, 10, Sample::Counter(1.0)), (d, 10, Sample::Distribution(Box::new(dist)))]);
    let text = e.render();
    assert!(text.contains("# TYPE op_retries_total counter\n"), "{text}");
    assert!(text.contains("op_retries_total{op=\"vm \\\"list\\\"\\n\",service=\"api\"} 3.5\n"), "{text}");
    assert!(text.contains("op_duration_seconds_bucket{service=\"api\",le=\"0.005\"} 2\n"), "{text}");
    assert!(text.contains("op_duration_seconds_bucket{service=\"api\",le=\"0.025\"} 6\n"), "{text}");
    assert!(text.contains("op_duration_seconds_bucket{service=\"api\",le=\"10\"} 8\n"), "{text}");
    assert!(text.contains("op_duration_seconds_bucket{service=\"api\",le=\"+Inf\"} 10\n"), "{text}");
    assert!(text.contains("op_duration_seconds_count{service=\"api\"} 10\n"), "{text}");
    assert!(text.contains("# HELP op_duration_seconds StatsD distribution"), "{text}");
    // Tag keys that are no label names are renamed, and kept apart when two meet.
    let odd = Arc::new(
        SeriesKey::new("api", "op.size", Kind::Distribution).label("le", "1").label("a.b", "x").label("a-b", "y"),
    );
    e.add(&[(odd, 20, Sample::Distribution(Box::new(Distribution::from_values(&[3.0]))))]);
    let text = e.render();
    assert!(text.contains("op_size_bucket{a_b=\"y\",a_b_2=\"x\",lle=\"1\",service=\"api\",le=\"5\"} 1\n"), "{text}");
    assert!(text.contains("op_size_sum{a_b=\"y\",a_b_2=\"x\",lle=\"1\",service=\"api\"} 3\n"), "{text}");
}

proptest::proptest! {
    // Names that meet in one family name (`x.y`, `x-y`, `x_y`), of every kind, with and
    // without a unit and labels: the layout is the one a sort of every key gives.
    #[test]
    fn the_layout_is_that_of_sorting_every_key(
        picks in proptest::collection::btree_set((0usize..5, 0usize..4, 0usize..2, 0usize..3, 0usize..2), 0..60),
    ) {
        const NAMES: [&str; 5] = ["x.y", "x-y", "x_y", "a", "a.b"];
        const KINDS: [Kind; 4] = [Kind::Counter, Kind::Gauge, Kind::Distribution, Kind::Set];
        let series: Vec<(Arc<SeriesKey>, Value)> = picks
            .iter()
            .map(|&(n, k, u, op, svc)| {
                let key = SeriesKey::new(["api", "db"][svc], NAMES[n], KINDS[k]).unit(["", "s"][u]);
                let key = if op == 0 { key } else { key.label("op", ["", "get", "put"][op]) };
                (Arc::new(key), Value::Gauge(0.0))
            })
            .collect();
        // The reference: every key sorted, each to its family in that order.
        let mut order: Vec<u32> = (0..series.len() as u32).collect();
        order.sort_by(|&a, &b| series[a as usize].0.cmp(&series[b as usize].0));
        let mut want: BTreeMap<String, (Kind, SharedStr, Vec<u32>)> = BTreeMap::new();
        let mut collisions = 0;
        for slot in order {
            let key = &series[slot as usize].0;
            let f = want.entry(metric_name(&key.name, key.kind, &key.unit)).or_insert_with(|| (key.kind, key.name.clone(), Vec::new()));
            if f.0 == key.kind { f.2.push(slot) } else { collisions += 1 }
        }
        let got = Layout::of(&series);
        let got_families: Vec<_> = got.families.iter().map(|f| (f.name.clone(), (f.kind, f.source.clone(), f.slots.clone()))).collect();
        proptest::prop_assert_eq!(got_families, want.into_iter().collect::<Vec<_>>());
        proptest::prop_assert_eq!(got.collisions, collisions);
        proptest::prop_assert_eq!(got.slots, series.len());
    }
}

#[test]
fn colliding_families_are_counted_not_mixed() {
    let mut e = Exposition::default();
    e.add(&[
        (Arc::new(SeriesKey::new("a", "x.y", Kind::Gauge)), 0, Sample::Gauge { last: 1.0, min: 1.0, max: 1.0 }),
        (Arc::new(SeriesKey::new("a", "x-y", Kind::Set)), 0, Sample::Set(3.0)),
        (Arc::new(SeriesKey::new("a", "x_y", Kind::Counter)), 0, Sample::Counter(1.0)),
    ]);
    let text = e.render();
    assert!(text.contains("perfagent_name_collisions_total 1\n"), "the set x-y collides with the gauge x.y: {text}");
    assert_eq!(text.matches("# TYPE x_y ").count(), 1, "one family per name: {text}");
}
