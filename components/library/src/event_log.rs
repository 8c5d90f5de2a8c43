//! The library's event log: every event it publishes, written in the same transaction as
//! the change it describes (so an event is in the log if and only if its change committed),
//! numbered by a per-library sequence, under an epoch: a random id of the log, drawn when the
//! log starts, so a log that was lost and started again is told apart from the old one.
//!
//! A position is `<epoch>:<seq>`, opaque to clients. The newest `max-events` events, none
//! older than `max-age-ms` (the host's `--event-retention`), are kept: the log is a ring of
//! `max-events` slots (event `seq` in slot `seq % max-events`), so a new event overwrites the
//! one `max-events` before it and nothing is pruned on the write path; a resume first drops
//! the rows past the age bound (at most `max-events` rows to look at). The newest event is
//! always kept, as the log's head.
//!
//! `eventsAfter {after}` answers a resuming subscription: every retained event after that
//! position, in order, or the reason it cannot (`reset`).
//!
//! The promise of a resume is "gap-free or reset", and it rests on one invariant: **the ring
//! holds one run of consecutive sequence numbers, ending at the head.** A resume from a
//! position inside the run (or just before it) gets the rest of the run; from anywhere older,
//! a reset. Each way the ring changes keeps the run whole:
//! - A write puts `seq` in slot `seq % N`, which holds `seq - N` (the run's oldest, when the
//!   ring is full) or nothing, as long as every row sits in its slot for the same `N`.
//! - The age bound drops a prefix of the run: every event up to the newest one past the bound
//!   (but the head), not each old row alone, so a clock that went back cannot cut a hole.
//! - A change of `max-events`, or a ring written before its `N` was recorded: the ring records
//!   the `N` it is laid out for (`kv` key `library/log-slots`). When the host's `N` differs, the
//!   next call that writes or resumes first lays the ring out again, in that call's
//!   transaction: it keeps the newest run of at most the new `N` events and moves each to its
//!   slot for the new `N` ([`relayout`] decides from the rows' slots and sequence numbers).
//!   Raising `N` keeps every event the ring held, lowering it keeps the newest `N`: the most a
//!   ring of the new size can hold. (Treating the events older than the change as lost would
//!   be as safe, but would reset resumes that can be served.) The move costs one scan of the
//!   ring's `(slot, seq)` and two updates, once per change.

use crate::db;
use crate::host::{kv, settings};
use crate::time::now_ms;
use serde_json::{json, Value as Json};
use std::cell::{Cell, RefCell};

const EPOCH_KEY: &str = "library/log-epoch";
/// The number of slots the ring is laid out for (decimal text).
const SLOTS_KEY: &str = "library/log-slots";

/// Migration 3: the first form of the log (a table that grew at one end and was pruned at
/// the other), replaced by migration 4.
pub const MIGRATION: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS event_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        event TEXT NOT NULL
    )",
];

/// Migration 4: the log as a ring of `max-events` slots, event `seq` in slot `seq % max-events`.
/// Its pages are allocated once and then rewritten in place: a table that grew at one end and
/// was pruned at the other freed and took pages every few commits, which cost two more page
/// writes per commit (the freelist and the header) than the row itself. The old log's events
/// are dropped, and with them its epoch, so no old position can name a new event.
pub const RING_MIGRATION: &[&str] = &[
    "DROP TABLE IF EXISTS event_log",
    "CREATE TABLE IF NOT EXISTS event_ring (
        slot INTEGER PRIMARY KEY,
        seq INTEGER NOT NULL,
        at INTEGER NOT NULL,
        event TEXT NOT NULL
    )",
];

/// Called by the migration to version 4: the log starts again under a new epoch.
pub fn forget_epoch() {
    kv::delete(EPOCH_KEY);
    kv::delete(SLOTS_KEY);
    forget_call();
}

/// Rows written by one INSERT at most.
const FLUSH_ROWS: usize = 64;

thread_local! {
    /// This instance's log epoch, once read or drawn.
    static EPOCH: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The sequence number given last (committed or in this call), once read.
    static LAST_SEQ: Cell<Option<i64>> = const { Cell::new(None) };
    /// The number of slots the ring is laid out for, once read or laid out.
    static SLOTS: Cell<Option<i64>> = const { Cell::new(None) };
    /// This call's events, written by [`flush`].
    static PENDING: RefCell<Vec<(i64, String)>> = const { RefCell::new(Vec::new()) };
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
    let epoch = crate::ids::random_hex16("the event log's epoch")?;
    kv::put(EPOCH_KEY, epoch.as_bytes());
    EPOCH.with(|e| *e.borrow_mut() = Some(epoch.clone()));
    Ok(epoch)
}

/// A call rolled back: forget what it drew or counted (the epoch, sequence numbers, the ring's
/// layout) and the events it did not write.
pub fn forget_call() {
    EPOCH.with(|e| *e.borrow_mut() = None);
    LAST_SEQ.set(None);
    SLOTS.set(None);
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
        None => db::query_int("SELECT COALESCE(MAX(seq), 0) FROM event_ring", &[])?,
    };
    LAST_SEQ.set(Some(last + 1));
    Ok(last + 1)
}

/// Write this call's events into their slots, in one statement.
pub fn flush() -> Result<(), String> {
    let pending = PENDING.with(|pending| std::mem::take(&mut *pending.borrow_mut()));
    if pending.is_empty() {
        return Ok(());
    }
    let slots = slots()?;
    let at = now_ms();
    for chunk in pending.chunks(FLUSH_ROWS) {
        let statement = format!(
            "INSERT OR REPLACE INTO event_ring (slot, seq, at, event) VALUES {}",
            vec!["(?, ?, ?, ?)"; chunk.len()].join(", ")
        );
        let params: Vec<_> =
            chunk.iter().flat_map(|(seq, event)| [db::int(seq % slots), db::int(*seq), db::int(at), db::text(event)]).collect();
        db::execute(&statement, &params)?;
    }
    Ok(())
}

/// How a ring's rows must move before it is written with a number of slots.
#[derive(Debug, PartialEq, Eq)]
enum Layout {
    /// The rows are one run of consecutive sequence numbers, each in its slot.
    Fits,
    /// Drop the rows before `keep_from`, then move each row to slot `seq % slots`.
    Move { keep_from: i64 },
}

/// The layout for `slots` slots of a ring whose rows are `rows` (each one's `(slot, seq)`): it
/// keeps the newest run of consecutive sequence numbers, at most `slots` of them.
fn relayout(rows: &[(i64, i64)], slots: i64) -> Layout {
    let mut seqs: Vec<i64> = rows.iter().map(|&(_, seq)| seq).collect();
    seqs.sort_unstable_by(|a, b| b.cmp(a));
    let Some(&newest) = seqs.first() else {
        return Layout::Fits;
    };
    let run = (0..).zip(&seqs).take_while(|&(back, &seq)| back < slots && seq == newest - back).count();
    let in_slots = rows.iter().all(|&(slot, seq)| slot == seq.rem_euclid(slots));
    if run == seqs.len() && in_slots {
        Layout::Fits
    } else {
        Layout::Move { keep_from: newest + 1 - i64::try_from(run).unwrap_or(i64::MAX) }
    }
}

/// The ring's number of slots (the host's `max-events`), with the ring laid out for it: when it
/// was written with another number, or before its number was recorded, its rows are moved
/// first (see the module doc), in this call's transaction.
fn slots() -> Result<i64, String> {
    let slots = i64::from(settings::event_retention().max_events.max(1));
    if SLOTS.get() == Some(slots) {
        return Ok(slots);
    }
    let recorded = kv::get(SLOTS_KEY).and_then(|bytes| String::from_utf8(bytes).ok()?.parse::<i64>().ok());
    if recorded != Some(slots) {
        let rows = db::query("SELECT slot, seq FROM event_ring", &[])?
            .iter()
            .map(|row| Ok((row.int(0)?, row.int(1)?)))
            .collect::<Result<Vec<_>, String>>()?;
        if let Layout::Move { keep_from } = relayout(&rows, slots) {
            db::execute("DELETE FROM event_ring WHERE seq < ?", &[db::int(keep_from)])?;
            // By way of negative slots, so that no row moves onto one that has yet to move.
            db::execute("UPDATE event_ring SET slot = -1 - slot", &[])?;
            db::execute("UPDATE event_ring SET slot = seq % ?", &[db::int(slots)])?;
        }
        kv::put(SLOTS_KEY, slots.to_string().as_bytes());
    }
    SLOTS.set(Some(slots));
    Ok(slots)
}

/// Before a resume: drop what is past the age bound, as a prefix of the log: every event up to
/// the newest one older than the bound, but the head. (The count bound is kept by [`slots`].)
/// The ring holds at most `max-events` rows, so this looks at no more than that.
fn apply_retention(head: i64) -> Result<(), String> {
    let max_age = i64::try_from(settings::event_retention().max_age_ms).unwrap_or(i64::MAX);
    let cutoff = now_ms().saturating_sub(max_age);
    db::execute(
        "DELETE FROM event_ring WHERE seq < ? AND seq <= (SELECT MAX(seq) FROM event_ring WHERE at <= ?)",
        &[db::int(head), db::int(cutoff)],
    )?;
    Ok(())
}

/// `(oldest, newest)` sequence numbers in the log, if it holds any event.
fn bounds() -> Result<Option<(i64, i64)>, String> {
    let row = db::query_row("SELECT MIN(seq), MAX(seq) FROM event_ring", &[])?;
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
    slots()?;
    let head = bounds()?.map(|(_, newest)| newest);
    if let Some(head) = head {
        apply_retention(head)?;
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
    if seq < oldest - 1 {
        return reset("that position is older than the events kept for resuming");
    }
    let rows = db::query("SELECT seq, event FROM event_ring WHERE seq > ? ORDER BY seq", &[db::int(seq)])?;
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
    fn a_ring_in_its_slots_fits() {
        assert_eq!(relayout(&[], 3), Layout::Fits);
        assert_eq!(relayout(&[(1, 4), (2, 5), (0, 6)], 3), Layout::Fits);
        assert_eq!(relayout(&[(2, 5), (0, 6)], 3), Layout::Fits, "not yet full");
    }

    #[test]
    fn a_raised_ring_moves_every_row() {
        // Written with 4 slots, seq 5..=8; now 8 slots: 5..=8 stay, in slots 5..=7 and 0.
        assert_eq!(relayout(&[(0, 8), (1, 5), (2, 6), (3, 7)], 8), Layout::Move { keep_from: 5 });
        // Rows that happen to sit in their new slots still move when the others must.
        assert_eq!(relayout(&[(1, 1), (2, 2), (0, 4)], 8), Layout::Move { keep_from: 4 }, "a hole: 3 is missing");
    }

    #[test]
    fn a_lowered_ring_keeps_the_newest() {
        assert_eq!(relayout(&[(0, 8), (1, 5), (2, 6), (3, 7)], 2), Layout::Move { keep_from: 7 });
        assert_eq!(relayout(&[(0, 8), (1, 5), (2, 6), (3, 7)], 1), Layout::Move { keep_from: 8 });
    }

    #[test]
    fn a_ring_with_a_hole_keeps_the_newest_run() {
        assert_eq!(relayout(&[(1, 1), (2, 2), (0, 4), (1, 5)], 3), Layout::Move { keep_from: 4 });
    }

    #[test]
    fn the_position_leads_the_published_event() {
        assert_eq!(with_position("e:1", r#"{"type":"x"}"#), r#"{"position":"e:1","type":"x"}"#);
        assert_eq!(with_position("e:1", "{}"), r#"{"position":"e:1"}"#);
    }
}
