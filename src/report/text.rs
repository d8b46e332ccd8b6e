//! Shared text helpers for the renderers: number formatting, escaping, aligned grids.

use super::model::RunRecord;

pub(crate) const RESET: &str = "\x1b[0m";
pub(crate) const BOLD: &str = "\x1b[1m";
pub(crate) const RED: &str = "\x1b[31m";
pub(crate) const GREEN: &str = "\x1b[32m";
pub(crate) const YELLOW: &str = "\x1b[33m";
pub(crate) const DIM: &str = "\x1b[2m";

/// The placeholder for "nothing" in tables.
pub(crate) const NONE: &str = "—";

/// Milliseconds as a short human duration: `412ms`, `5.21s`, `2m05s`.
pub(crate) fn format_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.2}s", ms as f64 / 1000.0)
    } else {
        let s = ms / 1000;
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// A dollar amount with enough precision for sub-cent agent runs: `$0.00024`, `$1.25`.
pub(crate) fn format_usd(v: f64) -> String {
    if !v.is_finite() {
        return format!("${v}");
    }
    let s = if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        let s = format!("{v:.6}");
        let s = s.trim_end_matches('0');
        if s.ends_with('.') {
            format!("{s}00")
        } else if s.len() - s.find('.').unwrap_or(0) < 3 {
            format!("{s}0")
        } else {
            s.to_string()
        }
    };
    format!("${s}")
}

/// `3/read/opencode` (`3/text-repeat:3` when no tool is involved), or `—` when no doom loop
/// fired.
pub(crate) fn doom_cell(r: &RunRecord) -> String {
    match &r.doom_loop {
        Some(d) if d.tool.is_empty() => format!("{}/{}", d.step, d.detector),
        Some(d) => format!("{}/{}/{}", d.step, d.tool, d.detector),
        None => NONE.to_string(),
    }
}

/// Retry count and total wait: `2 (4.00s)`, or `0`.
pub(crate) fn retries_cell(r: &RunRecord) -> String {
    if r.retries.is_empty() {
        "0".to_string()
    } else {
        format!("{} ({})", r.retries.len(), format_ms(r.retry_wait_ms()))
    }
}

/// `\u{..}`: how a character that must not reach the output is made visible instead.
fn push_visible(out: &mut String, c: char) {
    out.push_str(&format!("\\u{{{:x}}}", c as u32));
}

/// Replace control characters (including ESC) with visible `\u{..}` escapes so that hostile
/// names cannot inject terminal escapes or break line-oriented output.
pub(crate) fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            push_visible(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// Escape text for a GitHub-flavoured Markdown table cell or list item: backslash-escapes the
/// characters that change meaning (emphasis, code, links, HTML, pipes) and flattens newlines.
pub(crate) fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {
                // A literal backslash first, so Markdown shows `\u{..}` rather than eating it.
                out.push('\\');
                push_visible(&mut out, c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Where markup-escaped text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Markup {
    /// HTML element content or attribute value.
    Html,
    /// XML 1.0 element content.
    XmlText,
    /// A double-quoted XML 1.0 attribute value (newlines and tabs kept as references).
    XmlAttr,
}

/// Escape text for HTML or XML 1.0. Characters the target cannot carry (controls; in XML also
/// U+FFFE and U+FFFF) become visible `\u{..}` escapes.
pub(crate) fn markup_escape(s: &str, to: Markup) -> String {
    let xml = to != Markup::Html;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' if xml => out.push_str("&apos;"),
            '\'' => out.push_str("&#39;"),
            '\n' if to == Markup::XmlAttr => out.push_str("&#10;"),
            '\t' if to == Markup::XmlAttr => out.push_str("&#9;"),
            '\r' if xml => out.push_str("&#13;"),
            '\n' | '\t' => out.push(c),
            c if xml && ((c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}') => {
                push_visible(&mut out, c)
            }
            c if !xml && c.is_control() => push_visible(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

/// [`markup_escape`] for HTML.
pub(crate) fn html_escape(s: &str) -> String {
    markup_escape(s, Markup::Html)
}

/// One table cell: its text and an optional ANSI style applied only when colour is on.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    pub text: String,
    pub style: Option<&'static str>,
}

impl Cell {
    pub fn plain(text: impl Into<String>) -> Cell {
        Cell {
            text: sanitize(&text.into()),
            style: None,
        }
    }
    pub fn styled(text: impl Into<String>, style: &'static str) -> Cell {
        Cell {
            text: sanitize(&text.into()),
            style: Some(style),
        }
    }
}

/// `s` at most `width` characters: the start and the end kept, the middle replaced by `…`.
pub(crate) fn shorten_middle(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let tail = (width - 1) / 2;
    let head = width - 1 - tail;
    let chars: Vec<char> = s.chars().collect();
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[n - tail..]);
    out
}

/// `text` wrapped at spaces into lines of at most `width` characters (a longer word gets a
/// line of its own); lines after the first start with `indent`.
pub(crate) fn wrap(text: &str, width: usize, indent: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut has_word = false;
    for word in text.split(' ') {
        if has_word && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::replace(&mut line, indent.to_string()));
            has_word = false;
        }
        if has_word {
            line.push(' ');
        }
        line.push_str(word);
        has_word = true;
    }
    lines.push(line);
    lines
}

/// Narrowest a shrinking column gets, so a shortened name stays recognisable.
const MIN_SHRUNK: usize = 6;

/// Column-aligned text grid (two spaces between columns; `right[i]` right-aligns column i).
#[derive(Default)]
pub(crate) struct Grid {
    pub headers: Vec<String>,
    pub right: Vec<bool>,
    pub rows: Vec<Vec<Cell>>,
    /// Optional line above the headers labelling consecutive column groups: (label, columns).
    pub groups: Vec<(String, usize)>,
    /// Fit the rows into this many characters by shortening cells in the middle: the column
    /// whose width × `shrink` rank is largest loses a character, until the rows fit or every
    /// shrinking column is at [`MIN_SHRUNK`]; rank 0 never shrinks.
    pub width: Option<usize>,
    pub shrink: Vec<u8>,
}

impl Grid {
    /// Each column's width: its widest cell, then shrunk to fit `width` if set.
    fn widths(&self) -> Vec<usize> {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, c) in row.iter().enumerate().take(n) {
                widths[i] = widths[i].max(c.text.chars().count());
            }
        }
        let Some(limit) = self.width else {
            return widths;
        };
        let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
        let rank = |i: usize| self.shrink.get(i).copied().unwrap_or(0);
        // A table that cannot fit even with every name at its narrowest keeps its names whole:
        // mangling them would lose information and still not fit.
        let floor: Vec<usize> = (0..n)
            .map(|i| {
                if rank(i) > 0 {
                    widths[i].min(MIN_SHRUNK)
                } else {
                    widths[i]
                }
            })
            .collect();
        if total(&floor) > limit {
            return widths;
        }
        while total(&widths) > limit {
            let widest = (0..n)
                .filter(|&i| rank(i) > 0 && widths[i] > MIN_SHRUNK)
                .max_by_key(|&i| (widths[i] * usize::from(rank(i)), std::cmp::Reverse(i)));
            match widest {
                Some(i) => widths[i] -= 1,
                None => break,
            }
        }
        widths
    }

    pub fn render(&self, color: bool) -> String {
        let n = self.headers.len();
        let widths = self.widths();
        let mut out = String::new();
        if !self.groups.is_empty() {
            let mut line = String::new();
            let mut col = 0;
            for (label, span) in &self.groups {
                let span_end = (col + span).min(n);
                if col >= span_end {
                    break;
                }
                let width: usize =
                    widths[col..span_end].iter().sum::<usize>() + 2 * (span_end - col - 1);
                if col > 0 {
                    line.push_str("  ");
                }
                let label = sanitize(label);
                let text = if label.is_empty() {
                    " ".repeat(width)
                } else {
                    let head = format!("{label} ");
                    let fill = width.saturating_sub(head.chars().count());
                    format!("{head}{}", "─".repeat(fill))
                };
                line.push_str(&text);
                col = span_end;
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        let header: Vec<Cell> = self
            .headers
            .iter()
            .map(|h| Cell::styled(h.clone(), BOLD))
            .collect();
        for row in std::iter::once(&header).chain(self.rows.iter()) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let empty = Cell::plain("");
                let cell = row.get(i).unwrap_or(&empty);
                let shortened;
                let cell = if cell.text.chars().count() > *width {
                    // Headers of shrunk columns shorten like their cells.
                    shortened = Cell {
                        text: shorten_middle(&cell.text, *width),
                        style: cell.style,
                    };
                    &shortened
                } else {
                    cell
                };
                let pad = width.saturating_sub(cell.text.chars().count());
                if i > 0 {
                    line.push_str("  ");
                }
                let right = self.right.get(i).copied().unwrap_or(false);
                if right {
                    line.push_str(&" ".repeat(pad));
                }
                match (color, cell.style) {
                    (true, Some(style)) => {
                        line.push_str(style);
                        line.push_str(&cell.text);
                        line.push_str(RESET);
                    }
                    _ => line.push_str(&cell.text),
                }
                if !right {
                    line.push_str(&" ".repeat(pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A GitHub-flavoured Markdown table; cells must already be escaped.
pub(crate) fn md_table(headers: &[String], right: &[bool], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    out.push_str(&format!("| {} |\n", headers.join(" | ")));
    let seps: Vec<&str> = (0..headers.len())
        .map(|i| {
            if right.get(i).copied().unwrap_or(false) {
                "---:"
            } else {
                "---"
            }
        })
        .collect();
    out.push_str(&format!("|{}|\n", seps.join("|")));
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_money() {
        assert_eq!(format_ms(412), "412ms");
        assert_eq!(format_ms(5210), "5.21s");
        assert_eq!(format_ms(125_000), "2m05s");
        assert_eq!(format_usd(0.00024), "$0.00024");
        assert_eq!(format_usd(0.0), "$0.00");
        assert_eq!(format_usd(0.5), "$0.50");
        assert_eq!(format_usd(12.345), "$12.35");
    }

    #[test]
    fn wrapping_keeps_every_word_and_indents() {
        let lines = wrap("  ✗ alpha beta gamma delta", 14, "    ");
        assert_eq!(lines, ["  ✗ alpha beta", "    gamma", "    delta"]);
        assert_eq!(wrap("short", 80, "    "), ["short"]);
    }

    #[test]
    fn names_shorten_in_the_middle() {
        assert_eq!(
            shorten_middle("polling-job-status-consecutive", 12),
            "pollin…utive"
        );
        assert_eq!(shorten_middle("short", 12), "short");
        assert_eq!(shorten_middle("abcdef", 1), "…");
        assert_eq!(shorten_middle("abcdef", 0), "");
    }

    #[test]
    fn grids_fit_their_width_by_shrinking_names_only() {
        let grid = Grid {
            headers: vec!["name".into(), "n".into()],
            right: vec![false, true],
            rows: vec![vec![Cell::plain("a".repeat(40)), Cell::plain("123456")]],
            width: Some(30),
            shrink: vec![1, 0],
            ..Grid::default()
        };
        let text = grid.render(false);
        assert!(text.lines().all(|l| l.chars().count() <= 30), "{text}");
        assert!(text.contains("123456") && text.contains('…'), "{text}");
    }

    #[test]
    fn control_characters_are_made_visible() {
        assert_eq!(sanitize("a\x1b[31mb"), "a\\u{1b}[31mb");
        assert_eq!(md_escape("a\x1bb"), "a\\\\u{1b}b");
        assert_eq!(html_escape("a\rb'"), "a\\u{d}b&#39;");
        assert_eq!(markup_escape("a\rb'", Markup::XmlText), "a&#13;b&apos;");
        assert_eq!(markup_escape("a\n\tb", Markup::XmlText), "a\n\tb");
        assert_eq!(markup_escape("a\n\tb", Markup::XmlAttr), "a&#10;&#9;b");
        assert_eq!(
            markup_escape("\u{1}\u{ffff}\u{85}", Markup::XmlText),
            "\\u{1}\\u{ffff}\u{85}"
        );
    }
}
