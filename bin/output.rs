//! Where data goes (stdout or `--out FILE`) and progress for long runs: a bar on
//! a terminal, plain log lines otherwise.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::app::{refused, AppError};

/// Writes data to `--out FILE` (atomically) or to stdout.
pub fn emit(out: Option<&Path>, bytes: &[u8]) -> Result<(), AppError> {
    match out {
        Some(p) => crate::app::write_atomic(p, bytes),
        None => {
            let mut so = std::io::stdout().lock();
            so.write_all(bytes).and_then(|_| so.flush()).map_err(|e| refused(format!("stdout: {e}")))
        }
    }
}

/// Runs shorter than this many items show no progress at all.
const PROGRESS_ITEMS_MIN: u64 = 50_000;
/// Plain progress lines at most this often.
const PROGRESS_LOG_INTERVAL: Duration = Duration::from_secs(10);

pub struct Progress {
    bar: Option<ProgressBar>,
    plain: Option<std::cell::Cell<(u64, Instant)>>,
    what: &'static str,
    total: u64,
}

impl Progress {
    pub fn new(what: &'static str, total: u64) -> Progress {
        if total < PROGRESS_ITEMS_MIN {
            return Progress {
                bar: None,
                plain: None,
                what,
                total,
            };
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            bar.set_style(ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {per_sec} eta {eta}").expect("valid template"));
            bar.set_message(what);
            Progress {
                bar: Some(bar),
                plain: None,
                what,
                total,
            }
        } else {
            Progress {
                bar: None,
                plain: Some(std::cell::Cell::new((0, Instant::now()))),
                what,
                total,
            }
        }
    }

    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
        if let Some(c) = &self.plain {
            let (done, last) = c.get();
            let done = done + n;
            if last.elapsed() >= PROGRESS_LOG_INTERVAL {
                eprintln!("{}: {done}/{}", self.what, self.total);
                c.set((done, Instant::now()));
            } else {
                c.set((done, last));
            }
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
