//! StatsD parser cost per line, with 0, 1, 4 and 16 DogStatsD tags (fast-ingest.md: tag
//! parsing cost grows with tag count), and a packed 1400-byte datagram.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use perfagent::statsd::parser::{Line, lines, parse_line};
use std::hint::black_box;

fn line_with_tags(n: usize) -> String {
    let mut s = String::from("op.duration:123|ms");
    if n > 0 {
        let tags: Vec<String> = (0..n).map(|i| format!("tag{i}:value{i}")).collect();
        s.push_str("|#");
        s.push_str(&tags.join(","));
    }
    s
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_line");
    g.throughput(Throughput::Elements(1));
    for n in [0, 1, 4, 16] {
        let line = line_with_tags(n);
        g.bench_function(format!("{n}_tags"), |b| {
            b.iter(|| {
                let Ok(Line::Metric(m)) = parse_line(black_box(line.as_bytes())) else { panic!() };
                // Touch what the aggregator will: values and tags.
                black_box(m.values().count() + m.tag_pairs().count());
            })
        });
    }
    g.finish();

    // A packed datagram of 400 names, no tags, as in the agent benchmark.
    let kinds = ["c", "g", "ms", "h"];
    let mut datagram = String::new();
    let mut i = 0;
    while datagram.len() < 1380 {
        datagram.push_str(&format!("app.metric.{}:{}|{}\n", i % 400, i * 7 % 1000, kinds[i % 4]));
        i += 1;
    }
    let count = lines(datagram.as_bytes()).count() as u64;
    let mut g = c.benchmark_group("datagram");
    g.throughput(Throughput::Elements(count));
    g.bench_function("1400_bytes_no_tags", |b| {
        b.iter(|| {
            let mut ok = 0;
            for l in lines(black_box(datagram.as_bytes())) {
                ok += usize::from(parse_line(l).is_ok());
            }
            assert_eq!(ok as u64, count);
        })
    });
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
