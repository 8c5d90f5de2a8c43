//! The library's event log: every event it publishes, written in the same transaction as
//! the change it describes (so an event is in the log if and only if its change committed),
//! numbered by a per-library sequence, under an epoch: a random id of the log, drawn when the
//! log starts, so a log that was lost and started again is told apart from the old one.
//!
//! A position is `<epoch>:<seq>`, opaque to clients. The newest `max-events` events, none
//! older than `max-age-ms` (the host's `--event-retention`), are kept (pruned every 16
//! appends, so up to 15 more between two prunes); the newest event is always kept, as the
//! log's head. Pruning on the write path never scans the log: the count bound is a range delete on the primary
//! key, the age bound looks only at the oldest few rows (a resume applies it to the whole, bounded, log).
//!
//! `eventsAfter {after}` answers a resuming subscription: every retained event after that
//! position, in order, or the reason it cannot (`reset`).

use crate::db;
use crate::host::{kv, settings};
use serde_json::{json, Value as Json};
use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

const EPOCH_KEY: &str = "library/log-epoch";
/// Retention is applied on every this many appends (so the log holds up to this many events
/// more than `max-events` between two prunes); the age bound to this many of the oldest rows.
const PRUNE_EVERY: i64 = 16;
const AGE_PRUNE_ROWS: i64 = 32;

pub const MIGRATION: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS event_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        event TEXT NOT NULL
    )",
];

/// Rows written by one INSERT at most.
const FLUSH_ROWS: usize = 64;

thread_local! {
    /// This instance's log epoch, once read or drawn.
    static EPOCH: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The sequence number given last (committed or in this call), once read.
    static LAST_SEQ: std::cell::Cell<Option<i64>> = const { std::cell::Cell::new(None) };
    /// This call's events, written by [`flush`].
    static PENDING: RefCell<Vec<(i64, String)>> = const { RefCell::new(Vec::new()) };
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The log's epoch, if it has one yet.
fn stored_epoch() -> Option<String> {
    if let Some(epoch) = EPOCH.with(|e| e.borrow().clone()) {
        return Some(epoch);
    }
    let epoch = kv::get(EPOCH_KEY).and_then(|bytes| String::from_utf8(bytes).ok())?;
    EPOCH.with(|e| *e.borrow_mut() = Some(epoch.clone()));
    Some(epoch)
}

/// The log's epoch, drawn (and stored, in the call's transaction) by its first event.
fn epoch() -> Result<String, String> {
    if let Some(epoch) = stored_epoch() {
        return Ok(epoch);
    }
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for the event log's epoch: {e}"))?;
    let epoch: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    kv::put(EPOCH_KEY, epoch.as_bytes());
    EPOCH.with(|e| *e.borrow_mut() = Some(epoch.clone()));
    Ok(epoch)
}

/// A call rolled back: forget what it drew or counted (the epoch, sequence numbers) and the
/// events it did not write.
pub fn forget_call() {
    EPOCH.with(|e| *e.borrow_mut() = None);
    LAST_SEQ.set(None);
    PENDING.with(|pending| pending.borrow_mut().clear());
}

pub fn position(epoch: &str, seq: i64) -> String {
    format!("{epoch}:{seq}")
}

/// `<epoch>:<seq>` → its parts; `None` for anything else.
fn parse_position(text: &str) -> Option<(&str, i64)> {
    let (epoch, seq) = text.split_once(':')?;
    let canonical = !seq.is_empty() && (seq == "0" || !seq.starts_with('0')) && seq.bytes().all(|b| b.is_ascii_digit());
    if epoch.len() != 16 || !epoch.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) || !canonical {
        return None;
    }
    Some((epoch, seq.parse().ok()?))
}

/// `event` (a JSON object) as it is published: `{"position":"<position>",...the event's fields}`.
pub fn with_position(position: &str, event: &str) -> String {
    let fields = event.strip_prefix('{').unwrap_or(event);
    let mut out = String::with_capacity(position.len() + event.len() + 16);
    out.push_str("{\"position\":\"");
    out.push_str(position);
    out.push('"');
    if fields != "}" {
        out.push(',');
    }
    out.push_str(fields);
    out
}

/// Append `event` to the log; returns the text to publish (the event with its position).
/// The events of one call are written together by [`flush`], before the call commits.
pub fn append(event: &str) -> Result<String, String> {
    let epoch = epoch()?;
    let seq = next_seq()?;
    #[cfg(not(feature = "bench-without-log"))]
    PENDING.with(|pending| pending.borrow_mut().push((seq, event.to_owned())));
    Ok(with_position(&position(&epoch, seq), event))
}

/// The sequence number of the next event: one past the log's newest (never deleted, so a
/// number is never given twice), read once per instance and counted on from there.
fn next_seq() -> Result<i64, String> {
    let last = match LAST_SEQ.get() {
        Some(last) => last,
        None => db::query_int("SELECT COALESCE(MAX(seq), 0) FROM event_log", &[])?,
    };
    LAST_SEQ.set(Some(last + 1));
    Ok(last + 1)
}

/// Write this call's events, in one statement, and apply the retention.
pub fn flush() -> Result<(), String> {
    let pending = PENDING.with(|pending| std::mem::take(&mut *pending.borrow_mut()));
    let Some(&(head, _)) = pending.last() else {
        return Ok(());
    };
    let at = now_ms();
    for chunk in pending.chunks(FLUSH_ROWS) {
        let statement = format!("INSERT INTO event_log (seq, at, event) VALUES {}", vec!["(?, ?, ?)"; chunk.len()].join(", "));
        let params: Vec<_> = chunk.iter().flat_map(|(seq, event)| [db::int(*seq), db::int(at), db::text(event)]).collect();
        db::execute(&statement, &params)?;
    }
    let crossed = (head - pending.len() as i64) / PRUNE_EVERY != head / PRUNE_EVERY;
    if crossed {
        prune(head)?;
    }
    Ok(())
}

/// Apply the retention after the append of `head` (every [`PRUNE_EVERY`] appends).
fn prune(head: i64) -> Result<(), String> {
    let keep = i64::from(settings::event_retention().max_events.max(1));
    if head > keep {
        db::execute("DELETE FROM event_log WHERE seq <= ?", &[db::int(head - keep)])?;
    }
    prune_by_age(head, Some(AGE_PRUNE_ROWS))
}

/// Delete events older than the age bound, except the head; looking at the oldest `rows`
/// only, or at every row (at most `max-events` of them) when `None`.
fn prune_by_age(head: i64, rows: Option<i64>) -> Result<(), String> {
    let max_age = i64::try_from(settings::event_retention().max_age_ms).unwrap_or(i64::MAX);
    let cutoff = now_ms().saturating_sub(max_age);
    match rows {
        Some(rows) => db::execute(
            "DELETE FROM event_log WHERE seq IN (SELECT seq FROM event_log WHERE seq < ? ORDER BY seq LIMIT ?) AND at <= ?",
            &[db::int(head), db::int(rows), db::int(cutoff)],
        )?,
        None => db::execute("DELETE FROM event_log WHERE seq < ? AND at <= ?", &[db::int(head), db::int(cutoff)])?,
    };
    Ok(())
}

/// `(oldest, newest)` sequence numbers in the log, if it holds any event.
fn bounds() -> Result<Option<(i64, i64)>, String> {
    let row = db::query_row("SELECT MIN(seq), MAX(seq) FROM event_log", &[])?;
    match row {
        Some(row) => match (row.opt_int(0)?, row.opt_int(1)?) {
            (Some(oldest), Some(newest)) => Ok(Some((oldest, newest))),
            _ => Ok(None),
        },
        None => Ok(None),
    }
}

/// `eventsAfter {after}` → `{"events": [<event with position>, ...], "head": <position>}` when
/// every event after `after` is still in the log, else `{"reset": <reason>, "head": <position
/// or null>}`.
pub fn events_after(after: &str) -> Result<Json, String> {
    let head = bounds()?.map(|(_, newest)| newest);
    if let Some(head) = head {
        prune_by_age(head, None)?;
    }
    let epoch = stored_epoch();
    let head_position = match (&epoch, head) {
        (Some(epoch), Some(head)) => Json::String(position(epoch, head)),
        _ => Json::Null,
    };
    let reset = |reason: &str| Ok(json!({ "reset": reason, "head": head_position.clone() }));
    let Some((their_epoch, seq)) = parse_position(after) else {
        return reset("not a position of this channel");
    };
    let (Some(epoch), Some((oldest, newest))) = (epoch, bounds()?) else {
        return reset("the event log was reset since that position");
    };
    if their_epoch != epoch {
        return reset("the event log was reset since that position");
    }
    if seq > newest {
        return reset("that position is ahead of the event log");
    }
    // Pruning runs every few appends: the count bound is applied here exactly.
    let keep = i64::from(settings::event_retention().max_events.max(1));
    if seq < oldest.max(newest - keep + 1) - 1 {
        return reset("that position is older than the events kept for resuming");
    }
    let rows = db::query("SELECT seq, event FROM event_log WHERE seq > ? ORDER BY seq", &[db::int(seq)])?;
    let events = rows
        .iter()
        .map(|row| Ok(Json::String(with_position(&position(&epoch, row.int(0)?), &row.text(1)?))))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(json!({ "events": events, "head": head_position }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_strict() {
        assert_eq!(parse_position("0123456789abcdef:12"), Some(("0123456789abcdef", 12)));
        assert_eq!(parse_position("0123456789abcdef:0"), Some(("0123456789abcdef", 0)));
        for bad in ["", "12", "0123456789abcdef:", "0123456789abcdef:012", "0123456789ABCDEF:1", "abc:1", "0123456789abcdef:-1", "0123456789abcdef:1:2"] {
            assert_eq!(parse_position(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_position_leads_the_published_event() {
        assert_eq!(with_position("e:1", r#"{"type":"x"}"#), r#"{"position":"e:1","type":"x"}"#);
        assert_eq!(with_position("e:1", "{}"), r#"{"position":"e:1"}"#);
    }
}
