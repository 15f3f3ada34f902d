-- upay schema, SQLite. The events table has the sqlite-es layout plus
-- global_position (recording order: SQLite has one writer at a time, so the
-- order of positions is the order of commits), recorded_at and chain_hash.
CREATE TABLE IF NOT EXISTS events
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
CREATE UNIQUE INDEX IF NOT EXISTS events_global_position ON events (global_position);
-- Rows still to be chained (only those the single-command path wrote).
CREATE INDEX IF NOT EXISTS events_unsealed ON events (global_position) WHERE chain_hash IS NULL;

-- Rows inserted by sqlite-es carry no position: give them the next one.
CREATE TRIGGER IF NOT EXISTS events_assign_position AFTER INSERT ON events
    WHEN NEW.global_position IS NULL
BEGIN
    UPDATE events SET global_position = (SELECT COALESCE(MAX(global_position), 0) + 1 FROM events)
     WHERE rowid = NEW.rowid;
END;

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
