//! SQLite, the embedded store: the same table and the same rules as PostgreSQL;
//! SQLite admits one writer at a time, which orders positions by commit.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use super::{name, Head, NewEvent, NewInput, ReadSummary, RecordedEvent, StoreError, StreamGuard, CHAIN_GENESIS, FOLD_SKIPPED_EVENT_TYPES, REFUSAL};

const SCHEMA: &str = include_str!("../migrations/sqlite.sql");
/// SQLite allows at most 32,766 bound values a statement: 10 columns a row.
const LITE_INSERT_ROWS_MAX: usize = 3_000;

pub async fn open(url: &str, path: &str) -> Result<SqlitePool, StoreError> {
    let unreachable = |e: sqlx::Error| StoreError::Unreachable {
        url: url.to_string(),
        reason: e.to_string(),
    };
    if path.is_empty() {
        return Err(StoreError::BadUrl(format!("--store '{url}' names no file")));
    }
    let opts = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
        .map_err(unreachable)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(60))
        .foreign_keys(true)
        // A page cache of 32 MiB a connection instead of 2: a day's writes
        // touch index pages all over a large log.
        .pragma("cache_size", "-32768");
    let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await.map_err(unreachable)?;
    let mut conn = pool.acquire().await?;
    let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
    sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(pool)
}

/// The columns the hash chain covers, and the hash.
const SELECT_COLUMNS: &str = "global_position, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, chain_hash";

fn time_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn row_to_event(r: &sqlx::sqlite::SqliteRow) -> RecordedEvent {
    RecordedEvent {
        position: r.get(0),
        aggregate_type: name(r.get(1)),
        aggregate_id: r.get(2),
        sequence: r.get(3),
        event_type: name(r.get(4)),
        event_version: name(r.get(5)),
        payload: r.get(6),
        chain_hash: r.get(7),
    }
}

pub async fn for_each_event<E, F>(pool: &SqlitePool, read: &super::Read<'_>, mut f: F) -> Result<ReadSummary, E>
where
    F: FnMut(&mut RecordedEvent) -> Result<(), E>,
    E: From<StoreError>,
{
    let db = |e: sqlx::Error| E::from(StoreError::Db(e));
    let types_json = serde_json::to_string(&read.types.unwrap_or(&[])).expect("strings serialise");
    let skipped: &[&str] = if read.fold_only { &FOLD_SKIPPED_EVENT_TYPES } else { &[] };
    let skipped_json = serde_json::to_string(skipped).expect("strings serialise");
    let skipped_aggregate = if read.fold_only { REFUSAL } else { "" };
    let after = read.after;
    let until = read.until.map(time_text);
    // One read transaction: a consistent snapshot under WAL.
    let mut tx = pool.begin().await.map_err(db)?;
    let last: Option<i64> = sqlx::query_scalar("SELECT max(global_position) FROM events WHERE global_position > ?1 AND (?2 IS NULL OR recorded_at <= ?2)")
        .bind(after)
        .bind(&until)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
    let Some(last) = last else {
        tx.commit().await.map_err(db)?;
        return Ok(ReadSummary { rows: 0, last_position: after });
    };
    let filter = "global_position > ?1 AND global_position <= ?2 AND (?3 IS NULL OR recorded_at <= ?3) \
                  AND (json_array_length(?4) = 0 OR aggregate_type IN (SELECT value FROM json_each(?4))) \
                  AND event_type NOT IN (SELECT value FROM json_each(?5)) AND aggregate_type <> ?6";
    let sql = format!("SELECT {SELECT_COLUMNS} FROM events WHERE {filter} ORDER BY global_position");
    let mut n: u64 = 0;
    let mut last_read = after;
    {
        let mut rows = sqlx::query(&sql)
            .bind(after)
            .bind(last)
            .bind(&until)
            .bind(&types_json)
            .bind(&skipped_json)
            .bind(skipped_aggregate)
            .fetch(&mut *tx);
        while let Some(r) = rows.try_next().await.map_err(db)? {
            n += 1;
            let mut e = row_to_event(&r);
            last_read = e.position;
            f(&mut e)?;
        }
    }
    tx.commit().await.map_err(db)?;
    // A read that leaves nothing out must end on the snapshot's last row.
    if !read.fold_only && read.types.is_none() && last_read != last {
        return Err(E::from(StoreError::Corrupt(format!(
            "the read stopped at position {last_read}; the snapshot ends at {last}"
        ))));
    }
    Ok(ReadSummary { rows: n, last_position: last })
}

pub async fn load_streams(pool: &SqlitePool, aggregate_type: &str, ids: &[String]) -> Result<Vec<RecordedEvent>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids_json = serde_json::to_string(ids).expect("strings serialise");
    let sql = format!(
        "SELECT {SELECT_COLUMNS} FROM events WHERE aggregate_type = ?1 AND aggregate_id IN (SELECT value FROM json_each(?2)) ORDER BY aggregate_id, sequence"
    );
    let rows = sqlx::query(&sql).bind(aggregate_type).bind(ids_json).fetch_all(pool).await?;
    Ok(rows.iter().map(row_to_event).collect())
}

pub async fn load_positions(pool: &SqlitePool, positions: &[i64]) -> Result<Vec<RecordedEvent>, StoreError> {
    if positions.is_empty() {
        return Ok(Vec::new());
    }
    let json = serde_json::to_string(positions).expect("numbers serialise");
    let sql = format!("SELECT {SELECT_COLUMNS} FROM events WHERE global_position IN (SELECT value FROM json_each(?1)) ORDER BY global_position");
    let rows = sqlx::query(&sql).bind(json).fetch_all(pool).await?;
    Ok(rows.iter().map(row_to_event).collect())
}

pub async fn inputs_lookup(pool: &SqlitePool, ids: &[String]) -> Result<HashMap<String, String>, StoreError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ids_json = serde_json::to_string(ids).expect("strings serialise");
    let rows = sqlx::query("SELECT event_id, digest FROM inputs WHERE event_id IN (SELECT value FROM json_each(?1))")
        .bind(ids_json)
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

pub async fn append(pool: &SqlitePool, events: &[NewEvent], inputs: &[NewInput], guard: &StreamGuard) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
    if let Some(since) = guard.quiet_since {
        let newer: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE global_position > ?1 AND aggregate_type IN ('Payment', 'Merchant'))")
            .bind(since)
            .fetch_one(&mut *tx)
            .await?;
        if newer {
            return Err(StoreError::Stale(since));
        }
    }
    if !guard.streams.is_empty() {
        // Every stream in one statement.
        let streams = serde_json::to_string(&guard.streams).expect("streams serialise");
        let moved: Option<(String, String)> = sqlx::query_as(
            "SELECT json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]') FROM json_each(?1) AS j \
             WHERE COALESCE((SELECT max(e.sequence) FROM events e WHERE e.aggregate_type = json_extract(j.value, '$[0]') \
                                                                    AND e.aggregate_id = json_extract(j.value, '$[1]')), 0) \
                   <> json_extract(j.value, '$[2]') LIMIT 1",
        )
        .bind(streams)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((ty, id)) = moved {
            return Err(StoreError::Conflict(format!("{ty}/{id}")));
        }
    }
    let (head_pos, head_hash): (i64, String) = sqlx::query_as("SELECT position, hash FROM log_head WHERE id = 1")
        .fetch_optional(&mut *tx)
        .await?
        .unwrap_or((0, CHAIN_GENESIS.to_string()));
    let unsealed = sqlx::query(&format!(
        "SELECT {SELECT_COLUMNS} FROM events WHERE chain_hash IS NULL ORDER BY global_position"
    ))
    .fetch_all(&mut *tx)
    .await?;
    let mut head = Head {
        position: head_pos,
        hash: head_hash,
    };
    for r in unsealed.iter().map(row_to_event) {
        let h = head.seal(&r)?;
        sqlx::query("UPDATE events SET chain_hash = ?1 WHERE global_position = ?2")
            .bind(&h)
            .bind(r.position)
            .execute(&mut *tx)
            .await?;
    }
    if !events.is_empty() {
        let first: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(global_position), 0) + 1 FROM events")
            .fetch_one(&mut *tx)
            .await?;
        let rows = head.chain(events, first);
        for chunk in rows.chunks(LITE_INSERT_ROWS_MAX) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, global_position, chain_hash) ",
            );
            qb.push_values(chunk, |mut b, (e, pos, h)| {
                b.push_bind(e.aggregate_type)
                    .push_bind(&e.aggregate_id)
                    .push_bind(e.sequence)
                    .push_bind(e.event_type)
                    .push_bind(e.event_version)
                    .push_bind(&e.payload)
                    .push("'{}'")
                    .push_bind(*pos)
                    .push_bind(h);
            });
            qb.build().execute(&mut *tx).await.map_err(conflict)?;
        }
    }
    for chunk in inputs.chunks(LITE_INSERT_ROWS_MAX) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("INSERT INTO inputs (event_id, digest, outcome, global_position) ");
        qb.push_values(chunk, |mut b, i| {
            b.push_bind(&i.event_id).push_bind(&i.digest).push_bind(&i.outcome).push_bind(head.position);
        });
        qb.build().execute(&mut *tx).await.map_err(conflict)?;
    }
    sqlx::query(
        "INSERT INTO log_head (id, position, hash) VALUES (1, ?1, ?2) ON CONFLICT (id) DO UPDATE SET position = excluded.position, hash = excluded.hash",
    )
    .bind(head.position)
    .bind(&head.hash)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

fn conflict(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        if d.is_unique_violation() {
            return StoreError::Conflict(d.message().to_string());
        }
    }
    StoreError::Db(e)
}
