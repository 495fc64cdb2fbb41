//! A grouped bar chart as hand-written SVG: one group per cell, one bar per series, each group
//! on its own scale (cells differ by orders of magnitude), the ratio to the first series above
//! each bar and the value inside it. Shared by `compare` and `profiles`.

use std::fmt::Write as _;

/// One group of bars: a label under it and one value per series (`None`: no bar).
#[derive(Debug, Clone)]
pub struct Group {
    /// The label under the group.
    pub label: String,
    /// One value per series.
    pub values: Vec<Option<f64>>,
}

/// The chart as SVG text. `series` names the bars of each group (the first is what the ratios
/// are to); `unit` names a value in its tooltip (`req/s`); `short` writes a value inside its bar.
pub fn grouped_bars(
    title: &str,
    series: &[&str],
    groups: &[Group],
    unit: &str,
    short: impl Fn(f64) -> String,
) -> String {
    const COLORS: [&str; 5] = ["#2b6cb0", "#dd6b20", "#d69e2e", "#38a169", "#805ad5"];
    let bar = 26.0;
    let gap = 30.0;
    let group_width = series.len() as f64 * bar + gap;
    let left = 70.0;
    let top = 40.0;
    let height = 260.0;
    let width = left + groups.len() as f64 * group_width + 170.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{:.0}\" \
font-family=\"sans-serif\" font-size=\"11\">",
        top + height + 60.0
    );
    let _ = writeln!(
        s,
        "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{left}\" y=\"20\" \
font-size=\"14\">{title}</text>\n<line x1=\"{left}\" x2=\"{:.0}\" y1=\"{:.1}\" \
y2=\"{:.1}\" stroke=\"#999\"/>",
        width - 170.0,
        top + height,
        top + height
    );
    for (gi, group) in groups.iter().enumerate() {
        let x0 = left + gap / 2.0 + gi as f64 * group_width;
        let base = group.values.first().copied().flatten();
        let max = group.values.iter().flatten().copied().fold(1e-12, f64::max);
        for (si, name) in series.iter().enumerate() {
            let Some(value) = group.values.get(si).copied().flatten() else {
                continue;
            };
            let h = height * value / max;
            let x = x0 + si as f64 * bar;
            let y = top + height - h;
            let _ = writeln!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\">\
<title>{name}: {value:.2} {unit}</title></rect>",
                bar - 3.0,
                COLORS[si % COLORS.len()],
            );
            let ratio = base
                .filter(|b| *b > 0.0)
                .map(|b| format!("{:.2}", value / b))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"9\">{ratio}</text>\
<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"8\" fill=\"white\">{}</text>",
                x + (bar - 3.0) / 2.0,
                y - 3.0,
                x + (bar - 3.0) / 2.0,
                top + height - 4.0,
                short(value)
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x0 + series.len() as f64 * bar / 2.0,
            top + height + 18.0,
            group.label
        );
    }
    for (si, name) in series.iter().enumerate() {
        let y = top + 10.0 + si as f64 * 18.0;
        let x = width - 155.0;
        let _ = writeln!(
            s,
            "<rect x=\"{x:.0}\" y=\"{:.0}\" width=\"12\" height=\"12\" fill=\"{}\"/>\
<text x=\"{:.0}\" y=\"{:.0}\">{name}</text>",
            y - 10.0,
            COLORS[si % COLORS.len()],
            x + 18.0,
            y
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_carry_ratios_to_the_first_series_and_skip_missing_values() {
        let groups = [Group {
            label: "cell".into(),
            values: vec![Some(2.0), Some(3.0), None],
        }];
        let svg = grouped_bars("t", &["a", "b", "c"], &groups, "x", |v| format!("{v:.0}"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains(">1.00<") && svg.contains(">1.50<"));
        assert_eq!(
            svg.matches("<rect x=").count(),
            2 + 3,
            "two bars and three legend keys"
        );
    }
}
