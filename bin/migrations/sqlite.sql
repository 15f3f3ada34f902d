-- upay schema, SQLite, layout 2 (PRAGMA user_version; `sqlite::open` converts a
-- store of layout 1 once). The events table has the sqlite-es columns plus
-- global_position, recorded_at and chain_hash. global_position is the rowid:
-- the table is stored in recording order, a read in that order walks the table
-- itself, and a row sqlite-es inserts without a position gets the next one
-- (the largest rowid plus one; SQLite has one writer at a time, so the order of
-- positions is the order of commits). The stream key is a unique index.
CREATE TABLE IF NOT EXISTS events
(
    aggregate_type  text                          NOT NULL,
    aggregate_id    text                          NOT NULL,
    sequence        integer CHECK (sequence >= 0) NOT NULL,
    event_type      text                          NOT NULL,
    event_version   text                          NOT NULL,
    payload         text                          NOT NULL,
    metadata        text                          NOT NULL,
    global_position integer PRIMARY KEY,
    recorded_at     text                          NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    chain_hash      text,
    UNIQUE (aggregate_type, aggregate_id, sequence)
) STRICT;
-- Rows still to be chained (only those the single-command path wrote).
CREATE INDEX IF NOT EXISTS events_unsealed ON events (global_position) WHERE chain_hash IS NULL;

CREATE TABLE IF NOT EXISTS inputs
(
    event_id        text    PRIMARY KEY,
    digest          text    NOT NULL,
    outcome         text    NOT NULL,
    global_position integer NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS merchant_secrets
(
    merchant_id     text PRIMARY KEY,
    notice_password text NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS notice_outbox
(
    notice_no   text    PRIMARY KEY,
    merchant_id text    NOT NULL,
    email       text    NOT NULL,
    payout_date text    NOT NULL,
    zip         blob    NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text,
    sent_at     text
) STRICT;

CREATE TABLE IF NOT EXISTS log_head
(
    id       integer PRIMARY KEY CHECK (id = 1),
    position integer NOT NULL,
    hash     text    NOT NULL
) STRICT;

-- The nightly batch's checkpoint (see postgres.sql).
CREATE TABLE IF NOT EXISTS checkpoints
(
    name       text    PRIMARY KEY,
    position   integer NOT NULL,
    chain_hash text,
    data       text    NOT NULL,
    written_at text    NOT NULL DEFAULT CURRENT_TIMESTAMP
) STRICT;

-- The checkpoint's parts (see postgres.sql).
CREATE TABLE IF NOT EXISTS checkpoint_parts
(
    name     text    PRIMARY KEY,
    position integer NOT NULL,
    sha256   text    NOT NULL,
    data     text    NOT NULL
) STRICT;
