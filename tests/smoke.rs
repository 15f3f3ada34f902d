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
