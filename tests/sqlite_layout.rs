//! An embedded store written by an earlier upay (layout 1: the stream key as
//! the event table's key, the position in an index beside it and a trigger
//! numbering sqlite-es's rows) is converted once, when it is next opened, to
//! layout 2 (the position as the rowid): every row kept with its position and
//! chain hash, the audit clean, and new rows, ours and sqlite-es's, numbered
//! after the last.
mod common;
use common::*;

/// The event table of layout 1, as `bin/migrations/sqlite.sql` created it.
const LAYOUT1_EVENTS: &str = "
CREATE TABLE events
(
    aggregate_type  text                          NOT NULL,
    aggregate_id    text                          NOT NULL,
    sequence        integer CHECK (sequence >= 0) NOT NULL,
    event_type      text                          NOT NULL,
    event_version   text                          NOT NULL,
    payload         text                          NOT NULL,
    metadata        text                          NOT NULL,
    global_position integer,
    recorded_at     text                          NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    chain_hash      text,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;
CREATE UNIQUE INDEX events_global_position ON events (global_position);
CREATE INDEX events_unsealed ON events (global_position) WHERE chain_hash IS NULL;
CREATE TRIGGER events_assign_position AFTER INSERT ON events
    WHEN NEW.global_position IS NULL
BEGIN
    UPDATE events SET global_position = (SELECT COALESCE(MAX(global_position), 0) + 1 FROM events)
     WHERE rowid = NEW.rowid;
END;";

const COLUMNS: &str = "aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, global_position, recorded_at, chain_hash";

fn rows(s: &TestStore) -> Vec<Vec<String>> {
    s.query(&format!("SELECT {COLUMNS} FROM events ORDER BY global_position"))
}

fn events_table_sql(s: &TestStore) -> String {
    // On one line: the rows of `query` are lines.
    s.query("SELECT replace(sql, char(10), ' ') FROM sqlite_master WHERE type = 'table' AND name = 'events'")[0][0].clone()
}

#[test]
fn a_layout1_store_is_converted_once_and_keeps_every_row() {
    let s = TestStore::new(Kind::Sqlite);
    let merchants = sample_dir().join("merchants.csv");
    s.ok(&["ingest", "merchants", merchants.to_str().unwrap()]);
    s.ok(&["ingest", "events", sample_dir().join("events.csv").to_str().unwrap()]);
    s.ok(&["settle", "--through", "2019-11-30"]);
    let before = rows(&s);
    let statements = s.ok(&["statements", "export", "--format", "csv"]);
    assert!(
        before.len() > 20,
        "a history with statements, notices and a transfer file: {} rows",
        before.len()
    );

    // The same rows in the table of layout 1, as an earlier upay left them.
    s.sql(&format!(
        "ALTER TABLE events RENAME TO events_now; DROP INDEX events_unsealed; {LAYOUT1_EVENTS}
         INSERT INTO events ({COLUMNS}) SELECT {COLUMNS} FROM events_now ORDER BY global_position;
         DROP TABLE events_now; PRAGMA user_version = 0;"
    ));
    assert!(events_table_sql(&s).contains("PRIMARY KEY (aggregate_type, aggregate_id, sequence)"));
    assert_eq!(rows(&s), before, "the layout-1 copy holds the same rows");

    // The next command converts the store, once, and the audit finds it whole.
    let o = s.run(&["audit", "replay"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("converting the event table to layout 2"), "{err}");
    assert_eq!(rows(&s), before, "every row kept, with its position, time and chain hash");
    assert!(events_table_sql(&s).contains("global_position integer PRIMARY KEY"), "{}", events_table_sql(&s));
    assert_eq!(s.query("PRAGMA user_version"), vec![vec!["2".to_string()]]);
    assert!(s
        .query("SELECT name FROM sqlite_master WHERE name IN ('events_layout1', 'events_global_position', 'events_assign_position')")
        .is_empty());
    assert_eq!(s.ok(&["statements", "export", "--format", "csv"]), statements);
    let again = s.run(&["audit", "replay"]);
    assert_eq!(again.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&again.stderr).contains("converting"), "converted only once");

    // New rows follow the last: a merchant change through sqlite-es (no
    // position given) and upay's own append, both sealed and audited clean.
    let last: i64 = before.last().unwrap()[7].parse().unwrap();
    let changed = std::fs::read_to_string(&merchants).unwrap().replace("shop@example.jp", "shop-new@example.jp");
    assert_ne!(
        changed,
        std::fs::read_to_string(&merchants).unwrap(),
        "the fixture names the address changed here"
    );
    let changed = s.write("merchants-changed.csv", &changed);
    s.ok(&["ingest", "merchants", changed.to_str().unwrap()]);
    s.ok(&["settle", "--through", "2019-12-31"]);
    let after = rows(&s);
    let positions: Vec<i64> = after.iter().map(|r| r[7].parse().unwrap()).collect();
    assert_eq!(positions, (1..=positions.len() as i64).collect::<Vec<_>>(), "positions run on without a gap");
    assert!(positions.len() as i64 > last + 1, "the merchant change and the run were recorded");
    assert!(after.iter().all(|r| !r[9].is_empty()), "every row sealed");
    assert_eq!(after[last as usize][0], "Merchant", "sqlite-es's row took the next position");
    let o = s.run(&["audit", "replay"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
}
