//! The host imports this component uses (`sql`, `kv`, `channel`, `log`, `settings`): the real
//! WIT imports in the component, and in native unit tests in-memory fakes
//! (SQLite through rusqlite, a map, a list of published events).

#[cfg(not(test))]
pub use crate::realtime::host::{channel, kv, log, settings, sql};

#[cfg(test)]
pub use fake::{channel, kv, log, settings, sql};

#[cfg(test)]
pub mod fake {
    //! One fresh database, key-value map and event list per test thread.

    use std::cell::RefCell;

    thread_local! {
        static DB: rusqlite::Connection = {
            let db = rusqlite::Connection::open_in_memory().expect("in-memory sqlite");
            db.set_prepared_statement_cache_capacity(48);
            db
        };
        static EVENTS: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
    }

    /// Take the events published so far on this thread.
    pub fn take_events() -> Vec<(String, String)> {
        EVENTS.with(|e| std::mem::take(&mut *e.borrow_mut()))
    }

    pub mod sql {
        use rusqlite::types::{ToSqlOutput, Value as V, ValueRef};

        #[derive(Clone, Debug, PartialEq)]
        pub enum Value {
            Null,
            Integer(i64),
            Real(f64),
            Text(String),
            Blob(Vec<u8>),
        }

        pub struct ExecResult {
            pub changes: u64,
            pub last_insert_rowid: i64,
        }

        pub struct Rows {
            pub rows: Vec<Vec<Value>>,
        }

        impl rusqlite::ToSql for Value {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::Owned(match self {
                    Value::Null => V::Null,
                    Value::Integer(i) => V::Integer(*i),
                    Value::Real(f) => V::Real(*f),
                    Value::Text(s) => V::Text(s.clone()),
                    Value::Blob(b) => V::Blob(b.clone()),
                }))
            }
        }

        fn from_ref(v: ValueRef<'_>) -> Value {
            match v {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::Integer(i),
                ValueRef::Real(f) => Value::Real(f),
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            }
        }

        pub fn execute(statement: &str, params: &[Value]) -> Result<ExecResult, String> {
            super::DB.with(|db| {
                let changes = db
                    .execute(statement, rusqlite::params_from_iter(params))
                    .map_err(|e| e.to_string())?;
                Ok(ExecResult { changes: changes as u64, last_insert_rowid: db.last_insert_rowid() })
            })
        }

        pub fn query(statement: &str, params: &[Value]) -> Result<Rows, String> {
            super::DB.with(|db| {
                let mut stmt = db.prepare_cached(statement).map_err(|e| e.to_string())?;
                let width = stmt.column_count();
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(params), |row| {
                        (0..width).map(|i| row.get_ref(i).map(from_ref)).collect()
                    })
                    .map_err(|e| e.to_string())?
                    .collect::<Result<Vec<Vec<Value>>, _>>()
                    .map_err(|e| e.to_string())?;
                Ok(Rows { rows })
            })
        }
    }

    pub mod kv {
        use std::cell::RefCell;
        use std::collections::HashMap;

        thread_local! {
            static MAP: RefCell<HashMap<String, Vec<u8>>> = RefCell::new(HashMap::new());
        }

        pub fn get(key: &str) -> Option<Vec<u8>> {
            MAP.with(|m| m.borrow().get(key).cloned())
        }

        pub fn put(key: &str, value: &[u8]) {
            MAP.with(|m| m.borrow_mut().insert(key.to_owned(), value.to_vec()));
        }

        pub fn delete(key: &str) -> bool {
            MAP.with(|m| m.borrow_mut().remove(key).is_some())
        }
    }

    pub mod channel {
        pub fn publish(channel: &str, event: &str) {
            super::EVENTS.with(|e| e.borrow_mut().push((channel.to_owned(), event.to_owned())));
        }
    }

    pub mod settings {
        use std::cell::Cell;

        #[derive(Clone, Copy)]
        pub struct Retention {
            pub max_events: u32,
            pub max_age_ms: u64,
        }

        thread_local! {
            static RETENTION: Cell<(u32, u64)> = const { Cell::new((1000, 86_400_000)) };
        }

        /// Set this thread's retention (the host's default otherwise).
        pub fn set_event_retention(max_events: u32, max_age_ms: u64) {
            RETENTION.set((max_events, max_age_ms));
        }

        pub fn event_retention() -> Retention {
            let (max_events, max_age_ms) = RETENTION.get();
            Retention { max_events, max_age_ms }
        }
    }

    pub mod log {
        pub enum Level {
            Info,
        }

        pub fn log(_level: Level, _message: &str) {}
    }
}
