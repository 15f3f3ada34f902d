//! The throughput benchmark: generates a realistic history (default 10,000,000
//! events over a year for 20,000 merchants; `--quick` for a small one) and
//! measures, in one run and side by side on PostgreSQL:
//!   ingest (full validation and lifecycle rules) vs COPY of the same rows,
//!   the year settled at each cycle's end as it is ingested (statements only);
//!   settle folding the whole log (no checkpoint) and closing the last cycle
//!   vs a plain streaming read (`--one-shot`: the whole year in that run);
//!   audit replay vs the same read; notice rendering (render + ZIP);
//!   the embedded store's ingest; one more night after the year vs one night
//!   on an empty store; and the peak memory (RSS) of each of those steps.
//! Prints each rate and each ratio. Usage:
//!   cargo run --release --bin bench -- [--quick] [--one-shot] [--embedded-only] [--events N] [--merchants M] [--days D]
//! (`UPAY_BENCH_KEEP=1` keeps the generated files, to profile a step on them.)

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{Days, NaiveDate};
use futures::TryStreamExt;
use upay::cli::{Encoding, SettleArgs, ZipEnc};
use payout::cycle::Cycle;
use upay::config::Config;
use upay::demo::Rng;
use upay::store::Store;

struct Opts {
    events: u64,
    merchants: u32,
    days: u32,
    admin: String,
    /// Settle the whole year in one run at the end (the worst case: every
    /// sale of the year open at once) instead of at each cycle's end.
    one_shot: bool,
    /// Only the embedded store's ingest (`--embedded-only`).
    embedded_only: bool,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        events: 10_000_000,
        merchants: 20_000,
        days: 365,
        admin: "postgres://postgres@127.0.0.1:5432/postgres".into(),
        one_shot: false,
        embedded_only: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().expect("a value after the flag");
        match a.as_str() {
            "--quick" => {
                o.events = 300_000;
                o.merchants = 2_000;
                o.days = 60;
            }
            "--events" => o.events = val().parse().expect("a number"),
            "--merchants" => o.merchants = val().parse().expect("a number"),
            "--days" => o.days = val().parse().expect("a number"),
            "--pg" => o.admin = val(),
            "--one-shot" => o.one_shot = true,
            "--embedded-only" => o.embedded_only = true,
            "--bench" => {}
            "-h" | "--help" => {
                println!("usage: bench [--quick] [--one-shot] [--embedded-only] [--events N] [--merchants M] [--days D] [--pg URL]");
                std::process::exit(0);
            }
            other => {
                eprintln!("bench: unknown argument {other} (--help lists them)");
                std::process::exit(2);
            }
        }
    }
    o
}

extern "C" {
    /// glibc's: gives the heap's free pages back to the system.
    fn malloc_trim(pad: usize) -> i32;
}

/// Starts a new measurement of the peak memory: what earlier steps freed is
/// given back (glibc keeps it otherwise), then VmHWM is reset to the current
/// RSS (Linux does when 5 is written to clear_refs).
fn reset_peak_rss() {
    // SAFETY: malloc_trim only walks glibc's own heap, under its lock.
    unsafe {
        malloc_trim(0);
    }
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

const BRANDS: [&str; 9] = ["VISA", "VISA", "VISA", "MASTERCARD", "MASTERCARD", "JCB", "AMEX", "ID", "QUICPAY"];

/// Writes merchants.csv and one events file per day, about `o.events` events
/// in all; returns the files and the number of input rows.
fn generate(dir: &Path, o: &Opts, start: NaiveDate) -> (PathBuf, Vec<PathBuf>, u64) {
    let mut rng = Rng::new(42);
    let mut m = String::from(
        "merchant_id,name,contact,email,bank_code,bank_name,branch_code,branch_name,account_type,account_number,account_holder,rate_visa_master,rate_jcb_other,rate_emoney,fee_tax,notice_password,bank_name_kana,branch_name_kana\n",
    );
    for i in 0..o.merchants {
        let bank = if i % 4 == 0 {
            ("0001", "みずほ銀行", "ミズホ")
        } else {
            ("0005", "三菱UFJ銀行", "ミツビシ")
        };
        let _ = writeln!(
            m,
            "{:09},ベンチ商店{i},担当 太郎,b{i}@example.jp,{},{},001,本店,普通,{:07},ベンチシヨウテン,3.24,3.24,3.24,inclusive-8,{:09},{},ホンテン",
            400_000_000 + i,
            bank.0,
            bank.1,
            1_000_000 + i,
            100_000_000 + i,
            bank.2
        );
    }
    let mpath = dir.join("merchants.csv");
    std::fs::write(&mpath, m).expect("write merchants");
    let per_day = o.events / u64::from(o.days);
    let mut later: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let mut files = Vec::new();
    let mut total = 0u64;
    let mut txn = 0u64;
    let mut eid = 0u64;
    for d in 0..o.days {
        let date = start + Days::new(u64::from(d));
        let mut rows: Vec<String> = later.remove(&d).unwrap_or_default();
        // Counted in events as stored: a sale records an authorization and a
        // capture, every other row one event (or one refusal).
        let mut events_today = rows.len() as u64;
        while events_today < per_day {
            txn += 1;
            eid += 1;
            let merchant = 400_000_000 + rng.below(u64::from(o.merchants));
            let brand = BRANDS[rng.below(BRANDS.len() as u64) as usize];
            let amount = 100 + rng.below(500) * 100;
            let h = 9 + rng.below(12);
            let at = format!("{date}T{h:02}:{:02}:{:02}+09:00", rng.below(60), rng.below(60));
            let r = rng.below(1000);
            events_today += 2;
            if r < 10 {
                events_today -= 1;
                rows.push(format!("e{eid},decline,t{txn},{merchant},{at},{brand},{amount},tok{txn},,ng-02"));
            } else if r < 60 {
                rows.push(format!("e{eid},authorize,t{txn},{merchant},{at},{brand},{amount},tok{txn},,"));
                eid += 1;
                let cap = format!("{date}T{:02}:30:00+09:00", h + 1);
                rows.push(format!("e{eid},capture,t{txn},,{cap},,{amount},,,"));
            } else {
                rows.push(format!("e{eid},sale,t{txn},{merchant},{at},{brand},{amount},tok{txn},,"));
            }
            let f = rng.below(1000);
            let when = d + 1 + rng.below(20) as u32;
            let lat = (start + Days::new(u64::from(when))).to_string() + "T12:00:00+09:00";
            eid += 1;
            if f < 30 {
                later.entry(when).or_default().push(format!("e{eid},void,t{txn},,{lat},,,tok{txn},,"));
            } else if f < 33 {
                later.entry(when).or_default().push(format!("e{eid},chargeback,t{txn},,{lat},,,,,"));
                if f < 32 {
                    eid += 1;
                    let w = when + 5;
                    let lat2 = (start + Days::new(u64::from(w))).to_string() + "T12:00:00+09:00";
                    later.entry(w).or_default().push(format!("e{eid},chargeback_reversal,t{txn},,{lat2},,,,,"));
                }
            } else if f < 38 {
                // A refusal: a cancel from another card.
                later.entry(when).or_default().push(format!("e{eid},void,t{txn},,{lat},,,tokX,,"));
            }
        }
        rows.sort_by(|a, b| a.split(',').nth(4).cmp(&b.split(',').nth(4)));
        total += rows.len() as u64;
        let p = dir.join(format!("day-{}.csv", date.format("%Y%m%d")));
        let mut text = String::with_capacity(rows.len() * 90 + 80);
        text.push_str("event_id,kind,txn_id,merchant_id,at,brand,amount,card,installments,code\n");
        for r in rows {
            text.push_str(&r);
            text.push('\n');
        }
        std::fs::write(&p, text).expect("write day");
        files.push(p);
    }
    (mpath, files, total)
}

async fn fresh_pg(admin: &str, name: &str) -> String {
    let pool = sqlx::PgPool::connect(admin).await.expect("postgres reachable");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&pool)
        .await
        .expect("drop");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&pool).await.expect("create");
    let base = admin.rsplit_once('/').expect("a database in the URL").0;
    // Without TLS, for the engine and the baselines alike: on one machine it
    // only adds decryption to every read.
    format!("{base}/{name}?sslmode=disable")
}

async fn ingest_merchants(st: &Store, merchants: &Path) {
    let t = upay::csvin::read_table(merchants, Encoding::Utf8).expect("merchants");
    let parsed = upay::ingest::parse_merchants(merchants, &t).expect("merchants parse");
    upay::ingest::record_merchants(st, parsed).await.expect("merchants");
}

async fn ingest_all(st: &Store, files: &[PathBuf]) {
    for f in files {
        let t = upay::csvin::read_table(f, Encoding::Utf8).expect("events");
        let parsed = upay::ingest::parse_events(f, &t).expect("events parse");
        upay::ingest::record_events(st, f, parsed).await.expect("events");
    }
}

/// A plain streaming read of the events table in recording order that
/// deserialises each payload and sums the amounts.
async fn plain_read(url: &str) -> (u64, i64) {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let mut rows = sqlx::query_as::<_, (String,)>("SELECT payload::text FROM events ORDER BY global_position").fetch(&pool);
    let (mut n, mut sum) = (0u64, 0i64);
    while let Some((p,)) = rows.try_next().await.expect("row") {
        n += 1;
        let v: serde_json::Value = serde_json::from_str(&p).expect("json");
        if let Some(obj) = v.as_object().and_then(|o| o.values().next()).and_then(|x| x.as_object()) {
            sum += obj.get("amount").and_then(|a| a.as_i64()).unwrap_or(0);
        }
    }
    (n, sum)
}

async fn copy_baseline(url: &str, dump: &Path) -> (u64, f64) {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    sqlx::query("DROP TABLE IF EXISTS events_copy").execute(&pool).await.expect("drop");
    sqlx::query("CREATE TABLE events_copy (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)")
        .execute(&pool)
        .await
        .expect("create");
    let _ = std::fs::remove_file(dump);
    sqlx::query(&format!("COPY (SELECT * FROM events ORDER BY global_position) TO '{}'", dump.display()))
        .execute(&pool)
        .await
        .expect("dump");
    // Streamed from the file in 8 MiB pieces, so the baseline's memory does not
    // count against the engine's.
    use std::io::Read;
    let mut file = std::fs::File::open(dump).expect("open dump");
    let mut conn = pool.acquire().await.expect("conn");
    let mut n = 0u64;
    let t = Instant::now();
    let mut copy = conn.copy_in_raw("COPY events_copy FROM STDIN").await.expect("copy");
    let mut buf = vec![0u8; 8 << 20];
    loop {
        let k = file.read(&mut buf).expect("read dump");
        if k == 0 {
            break;
        }
        n += buf[..k].iter().filter(|b| **b == b'\n').count() as u64;
        copy.send(buf[..k].to_vec()).await.expect("send");
    }
    copy.finish().await.expect("finish");
    let secs = t.elapsed().as_secs_f64();
    sqlx::query("DROP TABLE events_copy").execute(&pool).await.expect("drop");
    let _ = std::fs::remove_file(dump);
    (n, secs)
}

fn settle_args(through: NaiveDate) -> SettleArgs {
    SettleArgs {
        through,
        notices_dir: std::env::temp_dir().join("upay-bench-notices"),
        transfers_dir: std::env::temp_dir().join("upay-bench-transfers"),
        zip_encryption: ZipEnc::Zipcrypto,
        shard: None,
        statements_only: true,
    }
}

fn line(label: &str, n: u64, secs: f64) -> f64 {
    let rate = n as f64 / secs;
    println!("{label:<48} {n:>10} rows {secs:>8.2} s {rate:>12.0} /s   peak RSS {:>7.0} MiB", peak_rss_mib());
    rate
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    upay::app::init_tracing();
    let o = parse_opts();
    let start = NaiveDate::from_ymd_opt(2024, 1, 1).expect("date");
    let dir = tempfile_dir();
    println!(
        "upay benchmark: {} events, {} merchants, {} days (files in {})",
        o.events,
        o.merchants,
        o.days,
        dir.display()
    );
    let t = Instant::now();
    let (merchants, files, rows) = generate(&dir, &o, start);
    println!("generated {rows} input rows in {:.1} s", t.elapsed().as_secs_f64());
    let cfg = Config::demo();
    let (last_file, year_files) = files.split_last().expect("at least one day");
    if o.embedded_only {
        reset_peak_rss();
        embedded_ingest(&dir, &merchants, year_files).await;
        println!("peak RSS {:.0} MiB", peak_rss_mib());
        remove_inputs(&dir);
        return;
    }

    // Ingest on PostgreSQL, then COPY of the same rows. The year is settled as
    // it is run, at the end of each cycle (statements only), except its last
    // cycle, which the measured settle closes (--one-shot: nothing before it).
    let year_end = start + Days::new(u64::from(o.days) - 2);
    let last_end = Cycle::last_ended_by(year_end).end();
    let url = fresh_pg(&o.admin, "upay_bench").await;
    let st = Store::open(&url).await.expect("store");
    ingest_merchants(&st, &merchants).await;
    let before = count_events(&st).await;
    let mut peaks = Vec::new();
    let (mut ingest_secs, mut cycles_secs, mut cycles_events, mut cycles_run, mut cycles_closed) = (0.0, 0.0, 0u64, 0u32, 0u64);
    reset_peak_rss();
    for (i, f) in year_files.iter().enumerate() {
        let day = start + Days::new(i as u64);
        let t = Instant::now();
        ingest_all(&st, std::slice::from_ref(f)).await;
        ingest_secs += t.elapsed().as_secs_f64();
        if !o.one_shot && Cycle::containing(day).end() == day && day < last_end {
            let n0 = count_events(&st).await;
            let t = Instant::now();
            let s = upay::batch::settle(&st, &cfg, &settle_args(day)).await.expect("settle a cycle");
            cycles_secs += t.elapsed().as_secs_f64();
            cycles_events += count_events(&st).await - n0;
            cycles_run += 1;
            cycles_closed += s.statements;
        }
    }
    let stored = count_events(&st).await - before - cycles_events;
    let ingest_rate = line("ingest (validate + lifecycle + write), events", stored, ingest_secs);
    peaks.push(("ingest and the year's settles", peak_rss_mib()));
    if cycles_run > 0 {
        println!(
            "  (the year's {cycles_run} cycle ends settled beside it: {cycles_closed} statements in {cycles_secs:.1} s, {:.2} s a run)",
            cycles_secs / f64::from(cycles_run)
        );
    }
    reset_peak_rss();
    let (copied, copy_secs) = copy_baseline(&url, &std::env::temp_dir().join("upay-bench-copy.txt")).await;
    let copy_rate = line("COPY of the same rows", copied, copy_secs);

    // Settle (statements only, folding the whole log) vs a plain read.
    reset_peak_rss();
    let t = Instant::now();
    let (n_read, _) = plain_read(&url).await;
    let read_rate = line("plain streaming read + deserialise + sum", n_read, t.elapsed().as_secs_f64());
    // Without a checkpoint: the fold of the whole log is what is measured.
    if let Store::Pg(p) = &st {
        sqlx::query("DELETE FROM checkpoints").execute(p).await.expect("no checkpoint");
    }
    reset_peak_rss();
    let t = Instant::now();
    let s = upay::batch::settle(&st, &cfg, &settle_args(year_end)).await.expect("settle");
    let settle_rate = line(
        &format!("settle: fold + close {} statements, events", s.statements),
        n_read,
        t.elapsed().as_secs_f64(),
    );
    peaks.push(("settle", peak_rss_mib()));
    reset_peak_rss();
    let t = Instant::now();
    let code = upay::audit::replay(&st, None).await.expect("replay");
    assert_eq!(code, 0, "the benchmark's history replays clean");
    let replay_rate = line("audit replay (chain + statements), events", n_read, t.elapsed().as_secs_f64());
    peaks.push(("audit replay", peak_rss_mib()));

    // One more night after the year vs one night on an empty store.
    let night = start + Days::new(u64::from(o.days) - 1);
    reset_peak_rss();
    let night_year = one_night(&st, last_file, night, &cfg).await;
    peaks.push(("night after the year", peak_rss_mib()));
    let url2 = fresh_pg(&o.admin, "upay_bench_night").await;
    let st2 = Store::open(&url2).await.expect("store");
    ingest_merchants(&st2, &merchants).await;
    let night_empty = one_night(&st2, last_file, night, &cfg).await;
    println!(
        "one night after the year: ingest {:.2} s + settle {:.2} s; on an empty store: ingest {:.2} s + settle {:.2} s",
        night_year.0, night_year.1, night_empty.0, night_empty.1
    );

    // The embedded store's ingest.
    reset_peak_rss();
    let lite_rate = embedded_ingest(&dir, &merchants, year_files).await;
    peaks.push(("ingest (SQLite)", peak_rss_mib()));

    // Notice rendering on its own, for the first thousand paying statements
    // (read back by position, as the batch does; the batch's history gives
    // the contracts).
    let (mut h, _) = upay::fold::History::for_batch(&st).await.expect("history");
    h.load_parts(&st, &upay::fold::Part::ALL).await.expect("checkpoint parts");
    let positions: Vec<i64> = h.paying_rows.values().flat_map(|rows| rows.values().map(|r| r.position)).take(1000).collect();
    let docs: Vec<notices::NoticeDocument> = st
        .load_positions(&positions)
        .await
        .expect("statements")
        .iter()
        .filter_map(|r| match serde_json::from_str(&r.payload) {
            Ok(projections::SettlementEvent::StatementClosed(s)) => Some(s),
            _ => None,
        })
        .filter_map(|s| {
            h.ledger
                .contract(&s.merchant_id)
                .map(|c| upay::notice_cmd::document_for(&s, c, &s.payee, &cfg, 1, s.notice_date))
        })
        .collect();
    drop(h);
    let t = Instant::now();
    for d in &docs {
        let pdf = notices::render_pdf(d).expect("render");
        notices::pack_zip(&d.notice_no, &pdf, "123456789", notices::ZipEncryption::ZipCrypto).expect("zip");
    }
    line("notices rendered + zipped", docs.len() as u64, t.elapsed().as_secs_f64());

    println!();
    println!("ratios (targets in brackets):");
    println!("  ingest / COPY            {:.2}  [>= 0.5]", ingest_rate / copy_rate);
    println!("  settle / plain read      {:.2}  [>= 0.7]", settle_rate / read_rate);
    println!("  replay / plain read      {:.2}  [>= 0.7]", replay_rate / read_rate);
    println!("  embedded ingest          {lite_rate:.0} events/s  [>= 100000]");
    println!(
        "  night after a year / night on an empty store  {:.2}  (settle alone {:.2})  [about 1]",
        (night_year.0 + night_year.1) / (night_empty.0 + night_empty.1),
        night_year.1 / night_empty.1
    );
    let (worst, mib) = peaks.iter().copied().fold(("", 0.0), |a, b| if b.1 > a.1 { b } else { a });
    println!("  peak RSS of the engine   {mib:.0} MiB in {worst}  [< 1024 for 10,000,000 events]");
    remove_inputs(&dir);
}

/// Removes the generated files, unless `UPAY_BENCH_KEEP` is set.
fn remove_inputs(dir: &Path) {
    if std::env::var_os("UPAY_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The embedded store's ingest of the first 30 days (of `year_files`) into a
/// new SQLite file beside the inputs; prints and returns its rate.
async fn embedded_ingest(dir: &Path, merchants: &Path, year_files: &[PathBuf]) -> f64 {
    let lite_path = dir.join("bench.db");
    let lite = Store::open(&format!("sqlite://{}", lite_path.display())).await.expect("sqlite");
    let sample: Vec<PathBuf> = year_files.iter().take(year_files.len().min(30)).cloned().collect();
    ingest_merchants(&lite, merchants).await;
    let before = count_events(&lite).await;
    let t = Instant::now();
    ingest_all(&lite, &sample).await;
    let lite_secs = t.elapsed().as_secs_f64();
    let lite_n = count_events(&lite).await - before;
    line("embedded store (SQLite) ingest, events", lite_n, lite_secs)
}

/// One night: the day's file ingested, then settled; the seconds of each.
async fn one_night(st: &Store, file: &Path, night: NaiveDate, cfg: &Config) -> (f64, f64) {
    let t = Instant::now();
    ingest_all(st, &[file.to_path_buf()]).await;
    let ingest = t.elapsed().as_secs_f64();
    let t = Instant::now();
    upay::batch::settle(st, cfg, &settle_args(night)).await.expect("settle night");
    (ingest, t.elapsed().as_secs_f64())
}

async fn count_events(st: &Store) -> u64 {
    let n: i64 = match st {
        Store::Pg(p) => sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(p).await.expect("count"),
        Store::Lite(p) => sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(p).await.expect("count"),
    };
    n as u64
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("upay-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("bench dir");
    d
}
