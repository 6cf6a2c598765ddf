//! The capacity chart (`capacity --plot`): per resource, daily peaks, the projected peak
//! month by month (with the auto range as a band), the target line and the capacity line.

use perfanalysis::capacity::Report;
use perfanalysis::capacity::model::{daily_peaks, grow};

/// Draw history and projection per resource: daily peaks, the projected peak month by month
/// (with the auto range as a band), the target line and the capacity line.
pub fn capacity(r: &Report) -> String {
    let (w, h, pad) = (760.0, 220.0, 50.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n",
        h * r.resources.len().max(1) as f64
    );
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    for (i, res) in r.resources.iter().enumerate() {
        let y0 = i as f64 * h;
        let days = daily_peaks(&res.history);
        let now = days.last().map_or(0, |d| d.0);
        let t0 = days.first().map_or(now, |d| d.0);
        let month_ms = 30.44 * 86_400_000.0;
        let t1 = now as f64 + f64::from(r.horizon_months) * month_ms;
        let hi_band = |m: u32| res.growth.high.map(|g| grow(res.peak, g, f64::from(m)));
        let mut ymax = days.iter().map(|d| d.1).fold(res.peak, f64::max);
        for m in &res.projection {
            ymax = ymax.max(m.peak).max(hi_band(m.month).unwrap_or(0.0));
        }
        if let Some(c) = res.capacity {
            ymax = ymax.max(c * 1.05);
        }
        let x = |t: f64| pad + (t - t0 as f64) / (t1 - t0 as f64).max(1.0) * (w - 2.0 * pad);
        let y = |v: f64| y0 + h - pad + -(v / ymax.max(1e-12)) * (h - 2.0 * pad);
        svg.push_str(&format!(
            "<text x=\"{pad}\" y=\"{}\" font-weight=\"bold\">{} ({})</text>\n",
            y0 + 20.0,
            esc(&res.resource),
            esc(&res.unit)
        ));
        let pts: Vec<String> = days.iter().map(|d| format!("{:.1},{:.1}", x(d.0 as f64), y(d.1))).collect();
        svg.push_str(&format!("<polyline fill=\"none\" stroke=\"#1f77b4\" points=\"{}\"/>\n", pts.join(" ")));
        if let (Some(lo), Some(hi)) = (res.growth.low, res.growth.high) {
            let upper: Vec<String> = (0..=r.horizon_months)
                .map(|m| {
                    format!("{:.1},{:.1}", x(now as f64 + f64::from(m) * month_ms), y(grow(res.peak, hi, f64::from(m))))
                })
                .collect();
            let lower: Vec<String> = (0..=r.horizon_months)
                .rev()
                .map(|m| {
                    format!("{:.1},{:.1}", x(now as f64 + f64::from(m) * month_ms), y(grow(res.peak, lo, f64::from(m))))
                })
                .collect();
            svg.push_str(&format!(
                "<polygon fill=\"#ff7f0e\" fill-opacity=\"0.2\" points=\"{} {}\"/>\n",
                upper.join(" "),
                lower.join(" ")
            ));
        }
        if !res.projection.is_empty() {
            let mut pts = vec![format!("{:.1},{:.1}", x(now as f64), y(res.peak))];
            pts.extend(
                res.projection
                    .iter()
                    .map(|m| format!("{:.1},{:.1}", x(now as f64 + f64::from(m.month) * month_ms), y(m.peak))),
            );
            svg.push_str(&format!(
                "<polyline fill=\"none\" stroke=\"#ff7f0e\" stroke-dasharray=\"5,3\" points=\"{}\"/>\n",
                pts.join(" ")
            ));
        }
        if let Some(c) = res.capacity {
            for (v, label, color) in [(c * r.target, "target", "#d62728"), (c, "capacity", "#444")] {
                let (x2, yv) = (w - pad, y(v));
                svg.push_str(&format!(
                    "<line x1=\"{pad}\" x2=\"{x2}\" y1=\"{yv:.1}\" y2=\"{yv:.1}\" stroke=\"{color}\" stroke-dasharray=\"2,2\"/>\
                     <text x=\"{:.1}\" y=\"{:.1}\" fill=\"{color}\">{label}</text>\n",
                    x2 + 2.0,
                    yv + 4.0
                ));
            }
        }
        svg.push_str(&format!(
            "<text x=\"{pad}\" y=\"{}\">history (daily peaks) → now → +{} months (dashed: projected peak)</text>\n",
            y0 + h - 15.0,
            r.horizon_months
        ));
    }
    svg.push_str("</svg>\n");
    svg
}
