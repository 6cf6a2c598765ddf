//! The capacity chart, as SVG (`perfctl capacity --plot` and the dashboard's capacity page):
//! one panel per resource with a value axis in the resource's unit, a date axis from the first
//! day of history to the horizon, the daily peaks, the projected peak month by month with the
//! growth range as a band, the target and capacity lines, "now", and a legend.
//!
//! Colours are the Okabe–Ito palette (told apart with any colour vision) and every line also
//! differs in dash pattern; the panel has its own white background so it reads the same in a
//! dark page. Every text from the store is escaped.

use std::fmt::Write as _;

use perfanalysis::capacity::model::{daily_peaks, grow};
use perfanalysis::capacity::{Report, Resource};

const W: f64 = 860.0;
const H: f64 = 300.0;
/// Plot area inside a panel: left, right, top, bottom margins.
const L: f64 = 78.0;
const R: f64 = 24.0;
const T: f64 = 44.0;
const B: f64 = 40.0;
const MONTH_MS: f64 = 30.44 * 86_400_000.0;

const HISTORY: &str = "#0072B2";
const PROJECTION: &str = "#E69F00";
const TARGET: &str = "#D55E00";
const CAPACITY: &str = "#333333";

/// Text for SVG: `&`, `<`, `>`, `"` escaped, control characters gone.
pub fn esc(s: &str) -> String {
    perfanalysis::human::clean(s).replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A round step for about `n` ticks over `span`: 1, 2 or 5 times a power of ten.
pub fn nice_step(span: f64, n: f64) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / n;
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * p).find(|s| *s >= raw).unwrap_or(10.0 * p)
}

/// [`nice_step`] in binary units: round steps of KiB, MiB, GiB (ticks read 2 GiB, 4 GiB).
pub fn nice_binary_step(span: f64, n: f64) -> f64 {
    let mut scale = 1.0;
    while span / scale >= 2048.0 && scale < 1024f64.powi(4) {
        scale *= 1024.0;
    }
    nice_step(span / scale, n) * scale
}

/// `v` in `unit`, short: `2.5 cores`, `3.0 GiB`, `12 MB/s`, `450 calls/s`.
pub fn value(v: f64, unit: &str) -> String {
    match unit {
        "bytes" => perfanalysis::human::bytes(v),
        "bytes/s" => format!("{}/s", perfanalysis::human::bytes(v)),
        _ => {
            let n = if v == 0.0 || v.abs() >= 100.0 {
                format!("{v:.0}")
            } else if v.abs() >= 10.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.2}")
            };
            let n = if n.contains('.') { n.trim_end_matches('0').trim_end_matches('.').to_owned() } else { n };
            if unit.is_empty() { n } else { format!("{n} {unit}") }
        }
    }
}

/// `2026-12` style month label of a Unix-ms time.
fn month_label(ms: i64) -> String {
    let t = perfanalysis::time::rfc3339(ms);
    t.get(..7).unwrap_or(&t).to_owned()
}

/// First day of each month between `t0` and `t1`, thinned to at most `max` labels.
fn month_ticks(t0: i64, t1: i64, max: usize) -> Vec<i64> {
    let mut ticks = Vec::new();
    let Some(start) = perfanalysis::time::rfc3339(t0).get(..7).map(str::to_owned) else { return ticks };
    let (Ok(mut y), Ok(mut m)) = (start[..4].parse::<i32>(), start[5..7].parse::<i32>()) else { return ticks };
    loop {
        m += 1;
        if m > 12 {
            m = 1;
            y += 1;
        }
        let Ok(t) = perfanalysis::time::parse_time(&format!("{y:04}-{m:02}-01")) else { break };
        if t > t1 {
            break;
        }
        ticks.push(t);
    }
    let every = ticks.len().div_ceil(max.max(1)).max(1);
    ticks.into_iter().enumerate().filter(|(i, _)| i % every == 0).map(|(_, t)| t).collect()
}

/// The whole chart: one panel per resource.
pub fn capacity(r: &Report) -> String {
    let n = r.resources.len().max(1);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{}\" viewBox=\"0 0 {W} {}\" \
         font-family=\"system-ui, sans-serif\" font-size=\"12\" role=\"img\">\n<title>Capacity projection, {} \
         months, target {:.0}%</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n",
        H * n as f64,
        H * n as f64,
        r.horizon_months,
        r.target * 100.0
    );
    if r.resources.is_empty() {
        svg.push_str("<text x=\"20\" y=\"40\">no resource with history to project</text>\n");
    }
    for (i, res) in r.resources.iter().enumerate() {
        panel(&mut svg, r, res, i as f64 * H);
    }
    svg.push_str("</svg>\n");
    svg
}

/// The panel's title: the resource, its base and its growth.
fn title(svg: &mut String, res: &Resource, px0: f64, y0: f64) {
    let growth = res.growth.rate.map_or_else(|| "growth unknown".into(), |g| format!("{:+.0}%/year", g * 100.0));
    let _ = writeln!(
        svg,
        "<text x=\"{px0}\" y=\"{:.1}\" font-weight=\"bold\" font-size=\"14\">{} ({})</text>\
         <text x=\"{px0}\" y=\"{:.1}\" fill=\"#555\">peak {} on {}, {} ({})</text>",
        y0 + 18.0,
        esc(&res.resource),
        esc(&res.unit),
        y0 + 34.0,
        esc(&value(res.peak, &res.unit)),
        esc(res.peak_at.get(..10).unwrap_or(&res.peak_at)),
        esc(&growth),
        esc(&res.growth.source)
    );
}

fn panel(svg: &mut String, r: &Report, res: &Resource, y0: f64) {
    let days = daily_peaks(&res.history);
    let now = days.last().map_or(0, |d| d.0);
    let t0 = days.first().map_or(now, |d| d.0);
    let t1 = now + (f64::from(r.horizon_months) * MONTH_MS) as i64;
    let at = |m: u32| now as f64 + f64::from(m) * MONTH_MS;
    let band = |g: Option<f64>, m: u32| g.map(|g| grow(res.peak, g, f64::from(m)));
    let mut ymax = days.iter().map(|d| d.1).fold(res.peak, f64::max);
    for m in &res.projection {
        ymax = ymax.max(m.peak).max(band(res.growth.high, m.month).unwrap_or(0.0)).max(m.range.map_or(0.0, |r| r.1));
    }
    if let Some(c) = res.capacity {
        ymax = ymax.max(c * 1.05);
    }
    let step = if res.unit.starts_with("bytes") { nice_binary_step(ymax, 5.0) } else { nice_step(ymax.max(1e-9), 5.0) };
    let ytop = (ymax / step).ceil().max(1.0) * step;
    let (px0, px1, py0, py1) = (L, W - R, y0 + T, y0 + H - B);
    let x = |t: f64| px0 + (t - t0 as f64) / ((t1 - t0) as f64).max(1.0) * (px1 - px0);
    let y = |v: f64| py1 - (v / ytop) * (py1 - py0);
    let pts = |it: &mut dyn Iterator<Item = (f64, f64)>| {
        it.map(|(t, v)| format!("{:.1},{:.1}", x(t), y(v))).collect::<Vec<_>>().join(" ")
    };

    title(svg, res, px0, y0);
    // Value axis with grid lines.
    let mut v = 0.0;
    while v <= ytop + step / 2.0 {
        let yy = y(v);
        let _ = writeln!(
            svg,
            "<line x1=\"{px0}\" x2=\"{px1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#e3e3e3\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#333\">{}</text>",
            px0 - 6.0,
            yy + 4.0,
            esc(&value(v, &res.unit))
        );
        v += step;
    }
    // Date axis.
    let _ = writeln!(svg, "<line x1=\"{px0}\" x2=\"{px1}\" y1=\"{py1}\" y2=\"{py1}\" stroke=\"#333\"/>");
    let _ = writeln!(svg, "<line x1=\"{px0}\" x2=\"{px0}\" y1=\"{py0}\" y2=\"{py1}\" stroke=\"#333\"/>");
    for t in month_ticks(t0, t1, 12) {
        let xx = x(t as f64);
        let _ = writeln!(
            svg,
            "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{py1}\" y2=\"{:.1}\" stroke=\"#333\"/>\
             <text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#333\">{}</text>",
            py1 + 5.0,
            py1 + 18.0,
            month_label(t)
        );
    }
    // Now.
    let xn = x(now as f64);
    let _ = writeln!(
        svg,
        "<line x1=\"{xn:.1}\" x2=\"{xn:.1}\" y1=\"{py0}\" y2=\"{py1}\" stroke=\"#888\" stroke-dasharray=\"1,3\"/>\
         <text x=\"{xn:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">now</text>",
        py1 + 32.0
    );
    // The range band (the seasonal model's 80 % range per month, or the growth range), the
    // projection, the history.
    let ranged: Vec<(f64, (f64, f64))> =
        res.projection.iter().filter_map(|m| m.range.map(|r| (at(m.month), r))).collect();
    if !ranged.is_empty() {
        let upper = pts(&mut ranged.iter().map(|(t, r)| (*t, r.1)));
        let lower = pts(&mut ranged.iter().rev().map(|(t, r)| (*t, r.0)));
        let _ = writeln!(svg, "<polygon fill=\"{PROJECTION}\" fill-opacity=\"0.18\" points=\"{upper} {lower}\"/>");
    } else if let (Some(_), Some(_)) = (res.growth.low, res.growth.high) {
        let upper = pts(&mut (0..=r.horizon_months).map(|m| (at(m), band(res.growth.high, m).unwrap_or(0.0))));
        let lower = pts(&mut (0..=r.horizon_months).rev().map(|m| (at(m), band(res.growth.low, m).unwrap_or(0.0))));
        let _ = writeln!(svg, "<polygon fill=\"{PROJECTION}\" fill-opacity=\"0.18\" points=\"{upper} {lower}\"/>");
    }
    if !res.projection.is_empty() {
        // A base grown at a rate starts from the base at now; a seasonal projection from its
        // first month (its base may be last season's peak, not today's level).
        let start = res.seasonality.is_none().then_some((now as f64, res.peak));
        let line = pts(&mut start.into_iter().chain(res.projection.iter().map(|m| (at(m.month), m.peak))));
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{PROJECTION}\" stroke-width=\"2\" stroke-dasharray=\"6,3\" points=\"{line}\"/>"
        );
    }
    let hist = pts(&mut days.iter().map(|d| (d.0 as f64, d.1)));
    let _ = writeln!(svg, "<polyline fill=\"none\" stroke=\"{HISTORY}\" stroke-width=\"1.5\" points=\"{hist}\"/>");
    if let Some(c) = res.capacity {
        for (v, dash, color) in [(c * r.target, "4,3", TARGET), (c, "1,2", CAPACITY)] {
            let yv = y(v);
            let _ = writeln!(
                svg,
                "<line x1=\"{px0}\" x2=\"{px1}\" y1=\"{yv:.1}\" y2=\"{yv:.1}\" stroke=\"{color}\" stroke-width=\"1.5\" \
                 stroke-dasharray=\"{dash}\"/>"
            );
        }
    }
    legend(svg, r, res, px1, y0 + 8.0);
}

fn legend(svg: &mut String, r: &Report, res: &Resource, right: f64, top: f64) {
    let mut items: Vec<(String, &str, &str, bool)> =
        vec![("daily peak".into(), HISTORY, "", false), ("projected peak".into(), PROJECTION, "6,3", false)];
    if res.projection.iter().any(|m| m.range.is_some()) {
        items.push(("80% range".into(), PROJECTION, "", true));
    } else if res.growth.low.is_some() && res.growth.high.is_some() {
        items.push(("growth range".into(), PROJECTION, "", true));
    }
    if let Some(c) = res.capacity {
        items.push((
            format!("target {:.0}% ({})", r.target * 100.0, value(c * r.target, &res.unit)),
            TARGET,
            "4,3",
            false,
        ));
        items.push((format!("capacity ({})", value(c, &res.unit)), CAPACITY, "1,2", false));
    }
    let width = items.iter().map(|i| 34.0 + 6.5 * i.0.chars().count() as f64).sum::<f64>();
    let mut x = right - width;
    for (label, color, dash, filled) in items {
        let sample = if filled {
            format!(
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"22\" height=\"8\" fill=\"{color}\" fill-opacity=\"0.25\"/>",
                top
            )
        } else {
            format!(
                "<line x1=\"{x:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{color}\" stroke-width=\"2\" \
                 stroke-dasharray=\"{dash}\"/>",
                x + 22.0,
                top + 4.0,
                top + 4.0
            )
        };
        let _ = writeln!(
            svg,
            "{sample}<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#333\">{}</text>",
            x + 26.0,
            top + 8.0,
            esc(&label)
        );
        x += 34.0 + 6.5 * label.chars().count() as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_and_values_read_well() {
        assert_eq!(nice_step(1.0, 5.0), 0.2);
        assert_eq!(nice_step(7.3, 5.0), 2.0);
        assert_eq!(nice_step(3.0e9, 5.0), 1.0e9);
        let gib = 1024.0 * 1024.0 * 1024.0;
        assert_eq!(nice_binary_step(27.9 * gib, 5.0), 10.0 * gib, "ticks at 0, 10, 20, 30 GiB");
        assert_eq!(nice_binary_step(700.0 * 1024.0 * 1024.0, 5.0), 200.0 * 1024.0 * 1024.0, "MiB below 2 GiB");
        assert_eq!(value(2.5, "cores"), "2.5 cores");
        assert_eq!(value(0.0, "cores"), "0 cores");
        assert_eq!(value(3.0 * 1024.0 * 1024.0 * 1024.0, "bytes"), "3.0 GiB");
        assert_eq!(value(450.0, "calls/s"), "450 calls/s");
        let t0 = perfanalysis::time::parse_time("2026-01-15").unwrap_or(0);
        let t1 = perfanalysis::time::parse_time("2026-05-02").unwrap_or(0);
        let ticks: Vec<String> = month_ticks(t0, t1, 12).into_iter().map(month_label).collect();
        assert_eq!(ticks, ["2026-02", "2026-03", "2026-04", "2026-05"]);
        assert_eq!(month_ticks(t0, t0 + 400 * 86_400_000, 6).len(), 5, "13 month starts thinned to every third");
        assert_eq!(esc("<b a=\"1\">&"), "&lt;b a=&quot;1&quot;&gt;&amp;");
    }
}
