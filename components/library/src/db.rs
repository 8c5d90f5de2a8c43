//! Thin typed helpers over the `sql` import: parameter constructors, statements
//! that report changes / row ids, and rows read by column index with type checks.
//! The host wraps every call in a transaction, so nothing here begins or commits.

use crate::host::sql;
pub use crate::host::sql::Value;

/// Run a statement that returns no rows; the number of rows it changed.
pub fn execute(statement: &str, params: &[Value]) -> Result<u64, String> {
    sql::execute(statement, params)
        .map(|r| r.changes)
        .map_err(|e| sql_error(statement, e))
}

/// Run an INSERT; the new row's id.
pub fn insert(statement: &str, params: &[Value]) -> Result<i64, String> {
    sql::execute(statement, params)
        .map(|r| r.last_insert_rowid)
        .map_err(|e| sql_error(statement, e))
}

/// Run a query; all its rows.
pub fn query(statement: &str, params: &[Value]) -> Result<Vec<Row>, String> {
    sql::query(statement, params)
        .map(|r| r.rows.into_iter().map(Row).collect())
        .map_err(|e| sql_error(statement, e))
}

/// Run a query that yields one row; that row, if any.
pub fn query_row(statement: &str, params: &[Value]) -> Result<Option<Row>, String> {
    Ok(query(statement, params)?.into_iter().next())
}

/// Run a query whose first row's first column is an integer (`COUNT(*)`, `EXISTS`).
pub fn query_int(statement: &str, params: &[Value]) -> Result<i64, String> {
    query_row(statement, params)?
        .ok_or_else(|| format!("sql: no row from `{statement}`"))?
        .int(0)
}

pub fn int(v: i64) -> Value {
    Value::Integer(v)
}

pub fn text(v: &str) -> Value {
    Value::Text(v.to_owned())
}

pub fn opt_text(v: Option<&str>) -> Value {
    v.map_or(Value::Null, text)
}

/// `?, ?, ?` for `n` parameters.
pub fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// One result row.
pub struct Row(Vec<Value>);

impl Row {
    pub fn int(&self, i: usize) -> Result<i64, String> {
        match self.0.get(i) {
            Some(Value::Integer(v)) => Ok(*v),
            other => Err(type_error(i, "integer", other)),
        }
    }

    pub fn text(&self, i: usize) -> Result<String, String> {
        match self.0.get(i) {
            Some(Value::Text(v)) => Ok(v.clone()),
            other => Err(type_error(i, "text", other)),
        }
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, String> {
        match self.0.get(i) {
            Some(Value::Null) => Ok(None),
            _ => self.int(i).map(Some),
        }
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, String> {
        match self.0.get(i) {
            Some(Value::Null) => Ok(None),
            _ => self.text(i).map(Some),
        }
    }
}

/// The host's message for a write past the user's storage quota, which is the user's to read
/// (it becomes the GraphQL error as it is, with the code `QUOTA_EXCEEDED`).
const QUOTA_EXCEEDED: &str = "Storage quota exceeded";

fn sql_error(statement: &str, error: String) -> String {
    if error.starts_with(QUOTA_EXCEEDED) {
        return error;
    }
    format!("sql: {error} (in `{statement}`)")
}

fn type_error(i: usize, wanted: &str, got: Option<&Value>) -> String {
    format!("sql: column {i} is not {wanted}: {got:?}")
}
