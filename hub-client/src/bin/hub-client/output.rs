//! Renders hub answers for people (aligned tables, control characters escaped, since
//! node names and commands come from remote tappers and their processes) and programs
//! (JSON lines; events in their one JSON form, `tapper_proto::json`). Events and warnings
//! print in the one event table, `tapper_proto::table`.

use tapper_proto::Timestamp;
pub use tapper_proto::json::{loss_json, stats_json, tapper_json, warning_json};
pub use tapper_proto::text::escape_control;

/// RFC 3339 with nanoseconds, UTC; empty when absent.
pub fn rfc3339(ts: Option<&Timestamp>) -> String {
    ts.map(tapper_proto::json::rfc3339).unwrap_or_default()
}

/// Prints rows as a left-aligned table with a header, control characters escaped.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    print!("{}", table(header, rows));
}

/// The text of [`print_table`], one line per row.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| escape_control(c).into_owned()).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut text = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        text.push_str(s.trim_end());
        text.push('\n');
    };
    line(header.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_cells_are_escaped_and_aligned_by_their_escaped_width() {
        let rows = vec![
            vec!["\x1b[2Jnode".to_owned(), "1".to_owned()],
            vec!["web-1".to_owned(), "22".to_owned()],
        ];
        let text = table(&["NODE", "EVENTS"], &rows);
        assert_eq!(
            text,
            "NODE         EVENTS\n\\x1b[2Jnode  1\nweb-1        22\n"
        );
    }
}
