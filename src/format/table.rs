//! Laying out a Markdown table as aligned plain-text columns (for a `<pre>` block).

use pulldown_cmark::Alignment;

/// Rows of cells as lines of columns padded to the widest cell (in characters), joined
/// by `" | "`, with a `-` rule under the header row when there is one.
pub(super) fn layout(rows: &[Vec<String>], align: &[Alignment], header: bool) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = |i: usize| {
        rows.iter()
            .filter_map(|r| r.get(i))
            .map(|c| c.trim().chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..columns).map(width).collect();
    let mut lines = Vec::with_capacity(rows.len() + 1);
    for (n, row) in rows.iter().enumerate() {
        let cells: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let cell = row.get(i).map_or("", |c| c.trim());
                pad(cell, w, align.get(i).copied().unwrap_or(Alignment::None))
            })
            .collect();
        lines.push(cells.join(" | ").trim_end().to_owned());
        if n == 0 && header {
            let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w.max(1))).collect();
            lines.push(rule.join("-+-"));
        }
    }
    lines.join("\n")
}

fn pad(cell: &str, width: usize, align: Alignment) -> String {
    let gap = width.saturating_sub(cell.chars().count());
    let (left, right) = match align {
        Alignment::Right => (gap, 0),
        Alignment::Center => (gap / 2, gap - gap / 2),
        Alignment::None | Alignment::Left => (0, gap),
    };
    format!("{}{cell}{}", " ".repeat(left), " ".repeat(right))
}
