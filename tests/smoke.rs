//! The manual's sample history through the binary on both stores.
mod common;
use common::*;

#[test]
fn sample_history_gives_the_expected_statements_on_both_stores() {
    let expected = std::fs::read_to_string(sample_dir().join("statements.csv")).unwrap();
    for kind in KINDS {
        let s = TestStore::new(kind);
        s.ok(&["ingest", "merchants", sample_dir().join("merchants.csv").to_str().unwrap()]);
        s.ok(&["ingest", "events", sample_dir().join("events.csv").to_str().unwrap()]);
        // Twice: every event recorded once.
        let o = s.run(&["ingest", "events", sample_dir().join("events.csv").to_str().unwrap()]);
        assert!(o.status.success());
        assert!(String::from_utf8_lossy(&o.stderr).contains("0 recorded, 8 already present"), "{}", String::from_utf8_lossy(&o.stderr));
        s.ok(&["settle", "--through", "2019-11-30"]);
        assert_eq!(s.ok(&["statements", "export", "--format", "csv"]), expected, "{kind:?}");
    }
}

/// Every command closes its store when it ends: on SQLite the write-ahead log
/// is folded back into the database file and removed, so the file alone is the
/// whole store (what an operator copies or backs up), also after a refusal.
#[test]
fn commands_close_the_embedded_store_leaving_no_write_ahead_log() {
    let s = TestStore::new(Kind::Sqlite);
    let wal = s.path().join("upay.db-wal");
    s.ok(&["ingest", "merchants", sample_dir().join("merchants.csv").to_str().unwrap()]);
    assert!(!wal.exists(), "ingest merchants left {}", wal.display());
    s.ok(&["ingest", "events", sample_dir().join("events.csv").to_str().unwrap()]);
    assert!(!wal.exists(), "ingest events left {}", wal.display());
    s.ok(&["settle", "--through", "2019-11-30"]);
    assert!(!wal.exists(), "settle left {}", wal.display());
    // A command refused after the store was opened closes it too.
    let o = s.run(&["statements", "explain", "--merchant", "999999999", "--period", "2019-10-01"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!wal.exists(), "a refused explain left {}", wal.display());
    // The closed file still holds everything the commands recorded.
    let expected = std::fs::read_to_string(sample_dir().join("statements.csv")).unwrap();
    assert_eq!(s.ok(&["statements", "export", "--format", "csv"]), expected);
    assert!(!wal.exists(), "statements export left {}", wal.display());
}
