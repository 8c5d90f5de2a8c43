//! Reading RPC arguments: the `args` JSON object and its typed fields.
//! A field of the wrong type is `Err`; `null` counts as absent unless the
//! caller asks for [`Field`] (where `null` means "clear").

use serde_json::{Map, Value};

pub type Args = Map<String, Value>;

/// A nullable field as sent: absent, explicitly `null`, or a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field<T> {
    Absent,
    Null,
    Set(T),
}

/// Parse `args`; empty text is `{}`, anything but an object is `Err`.
pub fn parse(text: &str) -> Result<Args, String> {
    if text.trim().is_empty() {
        return Ok(Args::new());
    }
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("args must be a JSON object".to_owned()),
        Err(e) => Err(format!("args are not valid JSON: {e}")),
    }
}

/// A required string.
pub fn string<'a>(args: &'a Args, key: &str) -> Result<&'a str, String> {
    opt_string(args, key)?.ok_or_else(|| format!("missing string field `{key}`"))
}

/// An optional string (`null` = absent).
pub fn opt_string<'a>(args: &'a Args, key: &str) -> Result<Option<&'a str>, String> {
    Ok(match field_string(args, key)? {
        Field::Set(s) => Some(s),
        Field::Absent | Field::Null => None,
    })
}

/// A string that may be absent, `null`, or set.
pub fn field_string<'a>(args: &'a Args, key: &str) -> Result<Field<&'a str>, String> {
    match args.get(key) {
        None => Ok(Field::Absent),
        Some(Value::Null) => Ok(Field::Null),
        Some(Value::String(s)) => Ok(Field::Set(s)),
        Some(_) => Err(format!("field `{key}` must be a string")),
    }
}

/// An optional integer (`null` = absent).
pub fn opt_int(args: &Args, key: &str) -> Result<Option<i64>, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| format!("field `{key}` must be an integer")),
    }
}

/// A required list of strings.
pub fn string_list<'a>(args: &'a Args, key: &str) -> Result<Vec<&'a str>, String> {
    opt_string_list(args, key)?.ok_or_else(|| format!("missing list field `{key}`"))
}

/// An optional list of strings (`null` = absent).
pub fn opt_string_list<'a>(args: &'a Args, key: &str) -> Result<Option<Vec<&'a str>>, String> {
    let items = match args.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(format!("field `{key}` must be a list of strings")),
    };
    items
        .iter()
        .map(|item| item.as_str().ok_or_else(|| format!("field `{key}` must be a list of strings")))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Args {
        parse(text).expect("valid args")
    }

    #[test]
    fn parse_accepts_objects_only() {
        assert!(parse("").expect("empty").is_empty());
        assert!(parse("{}").expect("object").is_empty());
        assert!(parse("[]").is_err());
        assert!(parse("{").is_err());
    }

    #[test]
    fn strings_and_nullability() {
        let a = args(r#"{"s":"x","n":null,"i":3}"#);
        assert_eq!(string(&a, "s"), Ok("x"));
        assert!(string(&a, "n").is_err());
        assert!(string(&a, "i").is_err());
        assert_eq!(opt_string(&a, "n"), Ok(None));
        assert_eq!(field_string(&a, "n"), Ok(Field::Null));
        assert_eq!(field_string(&a, "missing"), Ok(Field::Absent));
        assert_eq!(field_string(&a, "s"), Ok(Field::Set("x")));
    }

    #[test]
    fn integers() {
        let a = args(r#"{"i":-4,"f":1.5,"s":"1","n":null}"#);
        assert_eq!(opt_int(&a, "i"), Ok(Some(-4)));
        assert_eq!(opt_int(&a, "n"), Ok(None));
        assert!(opt_int(&a, "f").is_err());
        assert!(opt_int(&a, "s").is_err());
    }

    #[test]
    fn string_lists() {
        let a = args(r#"{"l":["a","b"],"bad":["a",1],"n":null}"#);
        assert_eq!(string_list(&a, "l"), Ok(vec!["a", "b"]));
        assert!(string_list(&a, "bad").is_err());
        assert_eq!(opt_string_list(&a, "n"), Ok(None));
        assert!(string_list(&a, "n").is_err());
    }
}
