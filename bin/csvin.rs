//! Reading an input CSV: UTF-8 (a leading BOM accepted) or Shift_JIS, a header
//! row naming the columns, every row kept with its line number.

use std::collections::HashMap;
use std::path::Path;

use crate::app::{refused, AppError};
use crate::cli::Encoding;

/// The largest input file read (2 GiB): a bigger nightly feed is split.
pub const INPUT_FILE_BYTES_MAX: u64 = 2 << 30;

pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Row>,
}

pub struct Row {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    pub fields: Vec<String>,
}

impl Table {
    pub fn column_index(&self) -> HashMap<&str, usize> {
        self.header.iter().enumerate().map(|(i, h)| (h.as_str(), i)).collect()
    }
}

pub fn read_table(path: &Path, encoding: Encoding) -> Result<Table, AppError> {
    let name = path.display();
    let meta = std::fs::metadata(path).map_err(|e| refused(format!("{name}: cannot read: {e}")))?;
    if meta.len() > INPUT_FILE_BYTES_MAX {
        return Err(refused(format!("{name}: larger than {INPUT_FILE_BYTES_MAX} bytes; split the file")));
    }
    let bytes = std::fs::read(path).map_err(|e| refused(format!("{name}: cannot read: {e}")))?;
    let text: String = match encoding {
        Encoding::Utf8 => {
            let b = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
            String::from_utf8(b.to_vec()).map_err(|e| {
                let upto = &b[..e.utf8_error().valid_up_to()];
                let line = 1 + upto.iter().filter(|c| **c == b'\n').count();
                refused(format!(
                    "{name}:{line}: not valid UTF-8 (use --encoding shift_jis for a file saved by Excel in Shift_JIS)"
                ))
            })?
        }
        Encoding::ShiftJis => {
            let (t, _, had_errors) = encoding_rs::SHIFT_JIS.decode(&bytes);
            if had_errors {
                let line = t.split('\n').position(|l| l.contains('\u{FFFD}')).map_or(1, |i| i + 1);
                return Err(refused(format!("{name}:{line}: not valid Shift_JIS")));
            }
            t.trim_start_matches('\u{FEFF}').to_string()
        }
    };
    if text.trim().is_empty() {
        return Err(refused(format!("{name}: the file is empty (a header row is required)")));
    }
    // Line numbers from byte offsets: the reader's own count skips blank lines.
    let line_starts: Vec<usize> = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
    // The reader's position can stand on the end of the line before the record
    // (or on blank lines it skipped): step over line ends to the record itself.
    let raw = text.as_bytes();
    let line_of = |byte: u64| {
        let mut b = byte as usize;
        while b < raw.len() && matches!(raw[b], b'\r' | b'\n') {
            b += 1;
        }
        line_starts.partition_point(|s| *s <= b) as u64
    };
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for rec in rdr.records() {
        match rec {
            Err(e) => {
                let line = e.position().map_or(0, |p| line_of(p.byte()));
                errors.push(format!("{name}:{line}: not readable as CSV: {e}"));
            }
            Ok(r) => {
                let line = r.position().map_or(0, |p| line_of(p.byte()));
                let fields: Vec<String> = r.iter().map(|f| f.to_string()).collect();
                if header.is_none() {
                    header = Some(fields.iter().map(|f| f.trim().to_string()).collect());
                } else if fields.iter().all(|f| f.trim().is_empty()) {
                    // A blank line (Excel leaves them at the end): nothing to record.
                    continue;
                } else {
                    rows.push(Row { line, fields });
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(refused(errors.join("\n")));
    }
    let header = header.ok_or_else(|| refused(format!("{name}: the file is empty (a header row is required)")))?;
    Ok(Table { header, rows })
}

/// Checks the header against the expected columns: every required one present,
/// nothing unknown, none twice.
pub fn check_header(path: &Path, t: &Table, required: &[&str], optional: &[&str]) -> Result<(), AppError> {
    let name = path.display();
    let mut problems = Vec::new();
    for r in required {
        if !t.header.iter().any(|h| h == r) {
            problems.push(format!("missing column '{r}'"));
        }
    }
    for (i, h) in t.header.iter().enumerate() {
        if !required.contains(&h.as_str()) && !optional.contains(&h.as_str()) {
            problems.push(format!("unknown column '{h}'"));
        }
        if t.header[..i].contains(h) {
            problems.push(format!("column '{h}' appears twice"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(refused(format!(
            "{name}:1: bad header: {} (expected {})",
            problems.join("; "),
            required.join(",")
        )))
    }
}
