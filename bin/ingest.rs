//! `upay ingest merchants|events`: the whole file is parsed and validated before
//! anything is written; a malformed file is refused whole (exit 2) with every bad
//! row listed. Well-formed event rows are applied in file order through the
//! Payment aggregate's own `decide`, in chunks: the touched aggregates are loaded
//! with one query, decided in memory, and the chunk's events, refusals and
//! idempotency records are written in one transaction. A chunk that dies half
//! way is rolled back; running the file again completes it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use cqrs_es::CqrsFramework;
use domain::ids::parse_digits;
use domain::merchant::{Merchant, MerchantCommand, MerchantEvent};
use domain::payment::{AuthorizeFields, Payment, PaymentCommand, PaymentCommandKind, PaymentContext, PaymentEvent, INSTALLMENTS_MAX};
use domain::time::parse_instant;
use domain::{
    contract, AccountType, Brand, CardToken, EventId, FeeTaxPolicy, MerchantContract, MerchantId, NoticePassword, PayeeBank, Rate, Rates, TxnId, Yen,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::app::{refused, AppError};
use crate::csvin::{check_header, Table};
use crate::store::{NewEvent, NewInput, Store, StoreError, StreamGuard, REFUSAL};

/// Rows decided and written per transaction.
pub const INGEST_CHUNK_ROWS_MAX: usize = 10_000;
/// Rows decided and written per transaction on the embedded store. Its
/// commits are cheap (WAL, no flush at commit), so smaller chunks let the next
/// chunk be decided while one is written: 2,500 took the benchmark's embedded
/// ingest from ~115,000 to ~150,000 events/s. On PostgreSQL every commit
/// flushes its log, and the same chunks were slower than 10,000 (measured).
const LITE_CHUNK_ROWS: usize = 2_500;
/// Rows below which an ingest never refreshes the planner's statistics.
const ANALYZE_ROWS_MIN: i64 = 10_000;
/// How often a chunk is retried when another writer touched its transactions.
const CHUNK_ATTEMPTS_MAX: usize = 3;

pub const MERCHANT_COLUMNS: [&str; 16] = [
    "merchant_id",
    "name",
    "contact",
    "email",
    "bank_code",
    "bank_name",
    "branch_code",
    "branch_name",
    "account_type",
    "account_number",
    "account_holder",
    "rate_visa_master",
    "rate_jcb_other",
    "rate_emoney",
    "fee_tax",
    "notice_password",
];
pub const MERCHANT_OPTIONAL_COLUMNS: [&str; 2] = ["bank_name_kana", "branch_name_kana"];
pub const EVENT_COLUMNS: [&str; 10] = [
    "event_id",
    "kind",
    "txn_id",
    "merchant_id",
    "at",
    "brand",
    "amount",
    "card",
    "installments",
    "code",
];

pub struct ParsedMerchant {
    pub line: u64,
    pub contract: MerchantContract,
    pub password: NoticePassword,
}

/// Collects the reasons one row is malformed.
struct RowErrors(Vec<String>);

impl RowErrors {
    fn take<T>(&mut self, r: Result<T, domain::ParseError>) -> Option<T> {
        r.map_err(|e| self.0.push(e.to_string())).ok()
    }
}

fn row_count_error(path: &Path, line: u64, got: usize, want: usize) -> String {
    format!("{}:{line}: has {got} fields, the header has {want}", path.display())
}

fn text_field(errs: &mut RowErrors, name: &'static str, v: &str, printed: bool) -> String {
    let t = v.trim();
    if t.is_empty() {
        errs.0.push(format!("{name} is empty"));
    } else if printed {
        let bad = notices::undrawable_chars(t);
        if !bad.is_empty() {
            errs.0.push(format!(
                "{name}: the notice font cannot draw {}",
                bad.iter().map(|c| format!("'{c}' (U+{:04X})", *c as u32)).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    t.to_string()
}

fn kana_field(errs: &mut RowErrors, name: &'static str, v: &str, required: bool) -> String {
    let t = v.trim();
    if t.is_empty() {
        if required {
            errs.0.push(format!("{name} is empty"));
        }
    } else if let Err(e) = payout::kana::validate_transfer_kana(t) {
        errs.0.push(format!("{name}: {e}"));
    }
    t.to_string()
}

pub fn parse_merchants(path: &Path, t: &Table) -> Result<Vec<ParsedMerchant>, AppError> {
    check_header(path, t, &MERCHANT_COLUMNS, &MERCHANT_OPTIONAL_COLUMNS)?;
    let col = t.column_index();
    let mut out: Vec<ParsedMerchant> = Vec::new();
    let mut seen: HashMap<MerchantId, usize> = HashMap::new();
    let mut bad = Vec::new();
    for row in &t.rows {
        if row.fields.len() != t.header.len() {
            bad.push(row_count_error(path, row.line, row.fields.len(), t.header.len()));
            continue;
        }
        let f = |name: &str| col.get(name).map_or("", |i| row.fields[*i].as_str());
        let mut e = RowErrors(Vec::new());
        let merchant_id = e.take(MerchantId::parse(f("merchant_id")));
        let name = text_field(&mut e, "name", f("name"), true);
        let contact = text_field(&mut e, "contact", f("contact"), true);
        let email = e.take(contract::parse_email(f("email")));
        let bank_code = e.take(parse_digits("bank_code", f("bank_code"), 4));
        let bank_name = text_field(&mut e, "bank_name", f("bank_name"), true);
        let branch_code = e.take(parse_digits("branch_code", f("branch_code"), 3));
        let branch_name = text_field(&mut e, "branch_name", f("branch_name"), true);
        let account_type = e.take(AccountType::parse(f("account_type")));
        let account_number = e.take(parse_digits("account_number", f("account_number"), 7));
        let account_holder = kana_field(&mut e, "account_holder", f("account_holder"), true);
        let bank_name_kana = kana_field(&mut e, "bank_name_kana", f("bank_name_kana"), false);
        let branch_name_kana = kana_field(&mut e, "branch_name_kana", f("branch_name_kana"), false);
        let rv = e.take(Rate::parse(f("rate_visa_master")).map_err(|x| domain::ParseError::new(format!("rate_visa_master: {x}"))));
        let rj = e.take(Rate::parse(f("rate_jcb_other")).map_err(|x| domain::ParseError::new(format!("rate_jcb_other: {x}"))));
        let re = e.take(Rate::parse(f("rate_emoney")).map_err(|x| domain::ParseError::new(format!("rate_emoney: {x}"))));
        let fee_tax = e.take(FeeTaxPolicy::parse(f("fee_tax")));
        let password = e.take(NoticePassword::parse(f("notice_password")));
        if !e.0.is_empty() {
            bad.push(format!("{}:{}: {}", path.display(), row.line, e.0.join("; ")));
            continue;
        }
        let (
            Some(merchant_id),
            Some(email),
            Some(bank_code),
            Some(branch_code),
            Some(account_type),
            Some(account_number),
            Some(rv),
            Some(rj),
            Some(re),
            Some(fee_tax),
            Some(password),
        ) = (
            merchant_id,
            email,
            bank_code,
            branch_code,
            account_type,
            account_number,
            rv,
            rj,
            re,
            fee_tax,
            password,
        )
        else {
            unreachable!("every None pushed an error");
        };
        let contract = MerchantContract {
            merchant_id: merchant_id.clone(),
            name,
            contact,
            email,
            bank: PayeeBank {
                bank_code,
                bank_name,
                branch_code,
                branch_name,
                account_type,
                account_number,
                account_holder,
                bank_name_kana,
                branch_name_kana,
            },
            rates: Rates {
                visa_master: rv,
                jcb_other: rj,
                emoney: re,
            },
            fee_tax,
        };
        if let Some(&i) = seen.get(&merchant_id) {
            if out[i].contract != contract || out[i].password != password {
                bad.push(format!(
                    "{}:{}: merchant {merchant_id} appears again (line {}) with different fields",
                    path.display(),
                    row.line,
                    out[i].line
                ));
            }
            continue;
        }
        seen.insert(merchant_id, out.len());
        out.push(ParsedMerchant {
            line: row.line,
            contract,
            password,
        });
    }
    if !bad.is_empty() {
        return Err(refused(format!(
            "{}\n{}: refused, nothing recorded ({} bad rows)",
            bad.join("\n"),
            path.display(),
            bad.len()
        )));
    }
    Ok(out)
}

/// Records merchants through the cqrs-es single-command path (postgres-es or
/// sqlite-es), one merchant at a time; the password goes to the secrets table.
pub async fn record_merchants(st: &Store, merchants: Vec<ParsedMerchant>) -> Result<(usize, usize, usize), AppError> {
    let (mut new, mut changed, mut unchanged) = (0, 0, 0);
    enum Fw {
        Pg(postgres_es::PostgresCqrs<Merchant>),
        Lite(sqlite_es::SqliteCqrs<Merchant>),
    }
    let fw = match st {
        Store::Pg(p) => Fw::Pg(postgres_es::postgres_cqrs(p.clone(), vec![], ())),
        Store::Lite(p) => Fw::Lite(sqlite_es::sqlite_cqrs(p.clone(), vec![], ())),
    };
    for m in merchants {
        let id = m.contract.merchant_id.to_string();
        let mut state = Merchant::default();
        for r in st.load_streams("Merchant", std::slice::from_ref(&id)).await? {
            let e: MerchantEvent = serde_json::from_str(&r.payload).map_err(|e| StoreError::Corrupt(format!("merchant {id}: {e}")))?;
            state.apply(&e);
        }
        let stored = st.secret(&id).await?;
        let password_changed = stored.as_deref() != Some(m.password.expose_secret());
        let cmd = MerchantCommand::Import {
            contract: m.contract.clone(),
            password_changed: password_changed && state.contract.is_some(),
        };
        let events = state.decide(&cmd).map_err(|e| refused(format!("line {}: {e}", m.line)))?;
        match Merchant::outcome(&events) {
            domain::merchant::ImportOutcome::New => new += 1,
            domain::merchant::ImportOutcome::Changed => changed += 1,
            domain::merchant::ImportOutcome::Unchanged => unchanged += 1,
        }
        if !events.is_empty() {
            let r = match &fw {
                Fw::Pg(f) => execute(f, &id, cmd).await,
                Fw::Lite(f) => execute(f, &id, cmd).await,
            };
            r.map_err(|e| AppError::Store(StoreError::Corrupt(format!("merchant {id}: {e}"))))?;
        }
        if password_changed {
            st.put_secret(&id, m.password.expose_secret()).await?;
        }
    }
    st.seal().await?;
    Ok((new, changed, unchanged))
}

async fn execute<ES: cqrs_es::EventStore<Merchant>>(f: &CqrsFramework<Merchant, ES>, id: &str, cmd: MerchantCommand) -> Result<(), String> {
    f.execute(id, cmd).await.map_err(|e| e.to_string())
}

/// One well-formed row of events.csv.
pub struct ParsedEvent {
    pub line: u64,
    pub digest: String,
    pub cmd: PaymentCommand,
}

/// Which fields a kind requires, allows, and forbids (SPEC §6).
struct KindRule {
    required: &'static [&'static str],
    optional: &'static [&'static str],
}

fn kind_rule(kind: &str) -> Option<KindRule> {
    const OPENING: &[&str] = &["event_id", "txn_id", "merchant_id", "at", "brand", "amount", "card"];
    Some(match kind {
        "authorize" | "sale" => KindRule {
            required: OPENING,
            optional: &["installments"],
        },
        "decline" => KindRule {
            required: OPENING,
            optional: &["installments", "code"],
        },
        "capture" => KindRule {
            required: &["event_id", "txn_id", "at"],
            optional: &["merchant_id", "amount"],
        },
        // An empty card is well formed: it never matches, and is refused P1245 (rule 9).
        "void" => KindRule {
            required: &["event_id", "txn_id", "at"],
            optional: &["merchant_id", "card"],
        },
        "chargeback" => KindRule {
            required: &["event_id", "txn_id", "at"],
            optional: &["merchant_id", "amount"],
        },
        "chargeback_reversal" => KindRule {
            required: &["event_id", "txn_id", "at"],
            optional: &["merchant_id"],
        },
        _ => return None,
    })
}

fn parse_event_row(fields: &[&str]) -> Result<(EventId, PaymentCommand), Vec<String>> {
    let get = |i: usize| fields[i].trim();
    let names = EVENT_COLUMNS;
    let mut e = RowErrors(Vec::new());
    let kind = get(1);
    let Some(rule) = kind_rule(kind) else {
        return Err(vec![format!(
            "unknown kind '{kind}' (authorize, sale, decline, capture, void, chargeback, chargeback_reversal)"
        )]);
    };
    for (i, n) in names.iter().enumerate() {
        if i == 1 {
            continue;
        }
        let present = !get(i).is_empty();
        if rule.required.contains(n) && !present {
            e.0.push(format!("{kind}: {n} is required"));
        } else if present && !rule.required.contains(n) && !rule.optional.contains(n) {
            e.0.push(format!("{kind}: {n} must be empty"));
        }
    }
    if !e.0.is_empty() {
        return Err(e.0);
    }
    let opt = |i: usize| Some(get(i)).filter(|s| !s.is_empty());
    let event_id = e.take(EventId::parse(get(0)));
    let txn_id = e.take(TxnId::parse(get(2)));
    let merchant_id = opt(3).and_then(|s| e.take(MerchantId::parse(s)));
    let at = e.take(parse_instant(get(4)));
    let brand = opt(5).and_then(|s| e.take(Brand::parse(s)));
    let amount = opt(6).and_then(|s| e.take(Yen::parse_amount(s)));
    let card = opt(7).and_then(|s| e.take(CardToken::parse(s)));
    let installments = opt(8).and_then(|s| match s.parse::<u8>() {
        Ok(n) if s.bytes().all(|b| b.is_ascii_digit()) && (1..=INSTALLMENTS_MAX).contains(&n) => Some(n),
        _ => {
            e.0.push(format!("installments '{s}' is not a whole number from 1 to {INSTALLMENTS_MAX}"));
            None
        }
    });
    let codes: Vec<String> = get(9).split_whitespace().map(str::to_string).collect();
    if let Some(c) = codes.iter().find(|c| !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')) {
        e.0.push(format!("code '{c}' is not a response code like ng-02 or G12"));
    }
    if !e.0.is_empty() {
        return Err(e.0);
    }
    let (Some(event_id), Some(txn_id), Some(at)) = (event_id, txn_id, at) else {
        unreachable!("errors pushed")
    };
    let opening = || AuthorizeFields {
        merchant_id: merchant_id.clone().expect("required"),
        brand: brand.expect("required"),
        amount: amount.expect("required"),
        card: card.clone().expect("required"),
        installments,
    };
    let kind = match kind {
        "authorize" => PaymentCommandKind::Authorize(opening()),
        "sale" => PaymentCommandKind::Sale(opening()),
        "decline" => PaymentCommandKind::Decline { fields: opening(), codes },
        "capture" => PaymentCommandKind::Capture { merchant_id, amount },
        "void" => PaymentCommandKind::Void { merchant_id, card },
        "chargeback" => PaymentCommandKind::Chargeback { merchant_id, amount },
        "chargeback_reversal" => PaymentCommandKind::ChargebackReversal { merchant_id },
        _ => unreachable!("kind checked"),
    };
    Ok((event_id.clone(), PaymentCommand { event_id, txn_id, at, kind }))
}

/// The content of a row, for "same event_id, same content" (the event id aside).
fn row_digest(fields: &[&str]) -> String {
    let mut h = Sha256::new();
    for f in &fields[1..] {
        h.update(f.trim().as_bytes());
        h.update(b"\x1f");
    }
    hex::encode(h.finalize())
}

/// The well-formed rows of an events file, and how many rows repeated an
/// earlier row of the same file exactly (skipped as already present).
pub struct EventsFile {
    pub rows: Vec<ParsedEvent>,
    pub repeated: u64,
}

/// A reason never repeats a value that looks like a card number, whatever
/// column it was typed into.
fn without_card_numbers(fields: &[&str], reasons: Vec<String>) -> Vec<String> {
    let pans: Vec<&str> = fields.iter().map(|f| f.trim()).filter(|f| domain::ids::looks_like_card_number(f)).collect();
    reasons
        .into_iter()
        .map(|mut r| {
            for p in &pans {
                r = r.replace(p, "[a card number, not repeated]");
            }
            r
        })
        .collect()
}

pub fn parse_events(path: &Path, t: &Table) -> Result<EventsFile, AppError> {
    check_header(path, t, &EVENT_COLUMNS, &[])?;
    let col = t.column_index();
    let order: Vec<usize> = EVENT_COLUMNS.iter().map(|c| col[c]).collect();
    let mut out = Vec::with_capacity(t.rows.len());
    let mut seen: HashMap<String, (u64, String)> = HashMap::new();
    let mut bad = Vec::new();
    let mut repeated = 0u64;
    for row in &t.rows {
        if row.fields.len() != t.header.len() {
            bad.push(row_count_error(path, row.line, row.fields.len(), t.header.len()));
            continue;
        }
        let fields: Vec<&str> = order.iter().map(|i| row.fields[*i].as_str()).collect();
        match parse_event_row(&fields) {
            Err(reasons) => bad.push(format!(
                "{}:{}: {}",
                path.display(),
                row.line,
                without_card_numbers(&fields, reasons).join("; ")
            )),
            Ok((event_id, cmd)) => {
                let digest = row_digest(&fields);
                if let Some((line, d)) = seen.get(event_id.as_str()) {
                    if *d != digest {
                        bad.push(format!(
                            "{}:{}: event_id {event_id} already appears on line {line} with different content",
                            path.display(),
                            row.line
                        ));
                    }
                    // Same content: skipped as already present.
                    repeated += 1;
                    continue;
                }
                seen.insert(event_id.to_string(), (row.line, digest.clone()));
                out.push(ParsedEvent { line: row.line, digest, cmd });
            }
        }
    }
    if !bad.is_empty() {
        return Err(refused(format!(
            "{}\n{}: refused, nothing recorded ({} bad rows)",
            bad.join("\n"),
            path.display(),
            bad.len()
        )));
    }
    Ok(EventsFile { rows: out, repeated })
}

/// A refusal as recorded (`Refusal` stream, one per refused input row).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventRefused {
    // Declared in key order: the record serialises straight to canonical JSON.
    pub at: String,
    pub code: String,
    pub event_id: String,
    pub kind: String,
    pub message: String,
    pub txn_id: String,
}

#[derive(Default)]
pub struct IngestSummary {
    pub recorded: u64,
    pub present: u64,
    pub refused: BTreeMap<String, u64>,
}

impl std::fmt::Display for IngestSummary {
    /// The line `ingest events` prints on stderr.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let refused: u64 = self.refused.values().sum();
        write!(f, "events: {} recorded, {} already present, {refused} refused", self.recorded, self.present)?;
        if !self.refused.is_empty() {
            let by_code: Vec<String> = self.refused.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            write!(f, " ({})", by_code.join(", "))?;
        }
        Ok(())
    }
}

/// The merchants registered so far (every Merchant stream starts with its
/// registration).
pub async fn registered_merchants(st: &Store) -> Result<HashSet<MerchantId>, AppError> {
    st.stream_ids("Merchant")
        .await?
        .iter()
        .map(|id| MerchantId::parse(id).map_err(|e| AppError::Store(StoreError::Corrupt(format!("merchant stream {id}: {e}")))))
        .collect()
}

/// The write of a chunk, running while the next one is decided.
type ChunkWrite = tokio::task::JoinHandle<Result<(), StoreError>>;

/// What a chunk's rows came to, once its write commits.
struct ChunkOutcome {
    recorded: u64,
    refused: BTreeMap<String, u64>,
}

/// Decides a chunk of rows in file order through the Payment aggregate: loads
/// the transactions not yet known, then returns the events, refusals and
/// idempotency records to write. `cache` takes the chunk's decisions at once.
async fn decide_chunk(
    st: &Store,
    chunk: &[&ParsedEvent],
    cache: &mut HashMap<TxnId, (Payment, i64)>,
    merchants: &HashSet<MerchantId>,
) -> Result<(Vec<NewEvent>, Vec<NewInput>, ChunkOutcome), AppError> {
    let t0 = std::time::Instant::now();
    let missing: Vec<String> = chunk
        .iter()
        .map(|r| &r.cmd.txn_id)
        .filter(|t| !cache.contains_key(*t))
        .collect::<HashSet<_>>()
        .into_iter()
        .map(|t| t.to_string())
        .collect();
    for r in st.load_streams("Payment", &missing).await? {
        let e: PaymentEvent = serde_json::from_str(&r.payload).map_err(|e| StoreError::Corrupt(format!("position {}: {e}", r.position)))?;
        let entry = cache
            .entry(TxnId::parse(&r.aggregate_id).map_err(|e| StoreError::Corrupt(e.to_string()))?)
            .or_default();
        entry.0.apply(&e);
        entry.1 = r.sequence;
    }
    let t_load = t0.elapsed();
    let mut events = Vec::with_capacity(chunk.len() * 2);
    let mut inputs = Vec::with_capacity(chunk.len());
    let mut outcome = ChunkOutcome {
        recorded: 0,
        refused: BTreeMap::new(),
    };
    for r in chunk {
        let txn = &r.cmd.txn_id;
        let (state, seq) = cache.entry(txn.clone()).or_default();
        let ctx = PaymentContext {
            merchant_registered: match &r.cmd.kind {
                PaymentCommandKind::Authorize(f) | PaymentCommandKind::Sale(f) | PaymentCommandKind::Decline { fields: f, .. } => {
                    merchants.contains(&f.merchant_id)
                }
                _ => true,
            },
        };
        let event_id = r.cmd.event_id.to_string();
        match state.decide(&r.cmd, ctx) {
            Ok(evs) => {
                for e in evs {
                    state.apply(&e);
                    *seq += 1;
                    events.push(NewEvent::canonical("Payment", txn.to_string(), *seq, e.name(), &e));
                }
                inputs.push(NewInput {
                    event_id,
                    digest: r.digest.clone(),
                    outcome: "recorded".into(),
                });
                outcome.recorded += 1;
            }
            Err(refusal) => {
                let rec = EventRefused {
                    event_id: event_id.clone(),
                    txn_id: txn.to_string(),
                    kind: r.cmd.kind.name().to_string(),
                    code: refusal.code().to_string(),
                    message: refusal.to_string(),
                    at: r.cmd.at.to_rfc3339(),
                };
                events.push(NewEvent::canonical(REFUSAL, event_id.clone(), 1, "EventRefused", &rec));
                inputs.push(NewInput {
                    event_id,
                    digest: r.digest.clone(),
                    outcome: refusal.code().to_string(),
                });
                *outcome.refused.entry(refusal.code().to_string()).or_default() += 1;
            }
        }
    }
    tracing::debug!("chunk of {}: load {:?}, decide {:?}", chunk.len(), t_load, t0.elapsed() - t_load);
    Ok((events, inputs, outcome))
}

pub async fn record_events(st: &Store, path: &Path, file: EventsFile) -> Result<IngestSummary, AppError> {
    let EventsFile { rows, repeated } = file;
    let mut summary = IngestSummary::default();
    // Event ids already recorded: the same content is skipped, other content refuses the file.
    let mut present: HashSet<String> = HashSet::new();
    let mut bad = Vec::new();
    // The registered merchants are read while the ids are looked up: two
    // reads on two connections, neither waiting for the other.
    let lookups = async {
        let mut known = Vec::new();
        for chunk in rows.chunks(INGEST_CHUNK_ROWS_MAX) {
            let ids: Vec<String> = chunk.iter().map(|r| r.cmd.event_id.to_string()).collect();
            known.push(st.inputs_lookup(&ids).await?);
        }
        Ok::<_, AppError>(known)
    };
    let (known, merchants) = tokio::try_join!(lookups, registered_merchants(st))?;
    for (chunk, known) in rows.chunks(INGEST_CHUNK_ROWS_MAX).zip(&known) {
        for r in chunk {
            if let Some(d) = known.get(r.cmd.event_id.as_str()) {
                if *d == r.digest {
                    present.insert(r.cmd.event_id.to_string());
                } else {
                    bad.push(format!(
                        "{}:{}: event_id {} was already recorded with different content",
                        path.display(),
                        r.line,
                        r.cmd.event_id
                    ));
                }
            }
        }
    }
    if !bad.is_empty() {
        return Err(refused(format!(
            "{}\n{}: refused, nothing recorded ({} bad rows)",
            bad.join("\n"),
            path.display(),
            bad.len()
        )));
    }
    summary.present = present.len() as u64 + repeated;
    let todo: Vec<&ParsedEvent> = rows.iter().filter(|r| !present.contains(r.cmd.event_id.as_str())).collect();
    let progress = crate::output::Progress::new("ingest", todo.len() as u64);
    // The transactions as decided so far, written or being written.
    let mut cache: HashMap<TxnId, (Payment, i64)> = HashMap::new();
    let chunk_rows = match st {
        Store::Pg(_) => INGEST_CHUNK_ROWS_MAX,
        Store::Lite(_) => LITE_CHUNK_ROWS,
    };
    let chunks: Vec<&[&ParsedEvent]> = todo.chunks(chunk_rows).collect();
    // Chunks are decided one ahead of the write: while the store writes chunk
    // k, chunk k+1 is loaded and decided from the state chunk k leaves. If the
    // write of k conflicts with another writer, what was decided after it is
    // dropped and the ingest goes on from k with the state reloaded.
    let mut attempts = vec![0usize; chunks.len()];
    let mut next = 0usize;
    let mut in_flight: Option<(usize, ChunkWrite, ChunkOutcome)> = None;
    loop {
        let decided = match chunks.get(next) {
            Some(chunk) => Some(decide_chunk(st, chunk, &mut cache, &merchants).await?),
            None => None,
        };
        if let Some((k, write, outcome)) = in_flight.take() {
            match write.await.map_err(|e| AppError::Invariant(format!("the write of a chunk stopped: {e}")))? {
                Ok(()) => {
                    summary.recorded += outcome.recorded;
                    for (code, n) in outcome.refused {
                        *summary.refused.entry(code).or_default() += n;
                    }
                    progress.inc(chunks[k].len() as u64);
                }
                Err(StoreError::Conflict(what)) if attempts[k] < CHUNK_ATTEMPTS_MAX => {
                    tracing::warn!("chunk conflicted with another writer ({what}); reloading and retrying");
                    cache.clear();
                    next = k;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let Some((events, inputs, outcome)) = decided else { break };
        attempts[next] += 1;
        let writer = st.clone();
        let write = tokio::spawn(async move { writer.append(&events, &inputs, &StreamGuard::default()).await });
        in_flight = Some((next, write, outcome));
        next += 1;
    }
    progress.finish();
    // The planner's statistics are refreshed after a load that grew the log by
    // a fifth or more (a first load, a backfill), not after a night's file on
    // a long history: ANALYZE reads a sample of the whole table, a cost that
    // would grow with the years. The hot queries are index probes whatever
    // the statistics say.
    const ANALYZE_GROWTH_DIVISOR: i64 = 5;
    let written = i64::try_from(todo.len()).expect("rows fit i64");
    if written >= ANALYZE_ROWS_MIN && written.saturating_mul(ANALYZE_GROWTH_DIVISOR) >= st.last_position().await? {
        st.analyze().await?;
    }
    Ok(summary)
}
