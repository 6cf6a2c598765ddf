//! CSV through the `csv` crate: RFC 4180 quoting, `\n` line ends, every field cleaned.

use std::io::Write;

/// A CSV writer over `out`.
pub fn writer(out: &mut dyn Write) -> csv::Writer<&mut dyn Write> {
    csv::WriterBuilder::new().from_writer(out)
}

/// Write one record, each field [`super::clean`]ed.
pub fn record<I, S>(w: &mut csv::Writer<&mut dyn Write>, fields: I) -> std::io::Result<()>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    w.write_record(fields.into_iter().map(|f| super::clean(f.as_ref()))).map_err(std::io::Error::other)
}

/// A number as CSV prints it (`round6`'s six decimals, no exponent for ordinary values), or
/// empty when absent.
pub fn number(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{}", perfanalysis::stats::round6(v)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn fields_are_quoted_only_when_needed() {
        let mut buf = Vec::new();
        {
            let mut w = super::writer(&mut buf);
            super::record(&mut w, ["a", "b,c", "say \"hi\"", "x\u{1b}y"]).unwrap();
            w.flush().unwrap();
        }
        assert_eq!(String::from_utf8(buf).unwrap(), "a,\"b,c\",\"say \"\"hi\"\"\",x?y\n");
    }
}
