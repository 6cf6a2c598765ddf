//! The one table every command prints through: column widths from the widest cell, text left
//! and numbers right, two spaces between columns, no trailing blanks, and every cell
//! [`super::cell`]-cleaned.

use std::io::Write;

use super::{Paint, cell};

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// A column: its header, alignment, narrowest width and the longest text a cell keeps.
#[derive(Debug, Clone)]
pub struct Column {
    header: String,
    align: Align,
    min_width: usize,
    max_chars: usize,
}

impl Column {
    /// A left-aligned text column.
    pub fn text(header: &str) -> Self {
        Self { header: header.to_owned(), align: Align::Left, min_width: 0, max_chars: usize::MAX }
    }

    /// A right-aligned number column.
    pub fn number(header: &str) -> Self {
        Self { align: Align::Right, ..Self::text(header) }
    }

    /// At least this wide.
    pub fn min_width(mut self, w: usize) -> Self {
        self.min_width = w;
        self
    }

    /// Cut cells past this many characters (with an ellipsis).
    pub fn max_chars(mut self, n: usize) -> Self {
        self.max_chars = n;
        self
    }
}

/// Rows under a header.
#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table of `columns`.
    pub fn new(columns: Vec<Column>) -> Self {
        Self { columns, rows: Vec::new() }
    }

    /// Add a row (one cell per column; each is cleaned and cut).
    pub fn row(&mut self, cells: Vec<String>) {
        let row = self
            .columns
            .iter()
            .zip(cells.iter().chain(std::iter::repeat(&String::new())))
            .map(|(c, s)| cell(s, c.max_chars))
            .collect();
        self.rows.push(row);
    }

    /// Print the header (bold) and the rows.
    pub fn render(&self, paint: Paint, out: &mut dyn Write) -> std::io::Result<()> {
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let cells = self.rows.iter().map(|r| r[i].chars().count());
                cells.chain([c.header.chars().count(), c.min_width]).max().unwrap_or(0)
            })
            .collect();
        let header: Vec<String> = self.columns.iter().map(|c| c.header.clone()).collect();
        writeln!(out, "{}", paint.bold(&self.line(&header, &widths)))?;
        for row in &self.rows {
            writeln!(out, "{}", self.line(row, &widths))?;
        }
        Ok(())
    }

    fn line(&self, cells: &[String], widths: &[usize]) -> String {
        let mut s = String::new();
        for (i, (c, col)) in cells.iter().zip(&self.columns).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = " ".repeat(widths[i].saturating_sub(c.chars().count()));
            match col.align {
                Align::Left => {
                    s.push_str(c);
                    s.push_str(&pad);
                }
                Align::Right => {
                    s.push_str(&pad);
                    s.push_str(c);
                }
            }
        }
        s.trim_end().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_cells_are_cleaned() {
        let mut t = Table::new(vec![Column::text("NAME"), Column::number("N").min_width(4), Column::text("NOTE")]);
        t.row(vec!["vm.list".into(), "12".into(), "ok".into()]);
        t.row(vec!["a\u{1b}[2Jb".into(), "7".into(), String::new()]);
        let mut out = Vec::new();
        t.render(Paint(false), &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "NAME        N  NOTE\nvm.list    12  ok\na?[2Jb      7\n");
    }
}
