//! The key=value grammar of an extxyz comment line, as ASE's `key_val_str_to_dict` reads it
//! and `key_val_dict_to_str` writes it.
//!
//! Values may be bare (`energy=-1.5`), quoted with `"` or `'`, or bracketed with `{}` / `[]`;
//! a backslash escapes the next character; a key without `=` means `True`. A value's parts
//! (split on whitespace and commas) become, in order of preference: integers, floats,
//! booleans (`T F True False true false TRUE FALSE`), else the value stays a string.

use indexmap::IndexMap;
use minima_atoms::Value;

use crate::number::parse_f64;

/// One `key[=value]` entry as written, before interpretation.
#[derive(Debug, Clone, PartialEq)]
pub struct RawPair {
    pub key: String,
    pub value: Option<String>,
}

/// Splits a comment line into raw pairs. Fails only on an unterminated quote or bracket.
pub fn split_pairs(line: &str) -> Result<Vec<RawPair>, String> {
    let mut pairs = Vec::new();
    let mut key = String::new();
    let mut value: Option<String> = None;
    let mut closing: Option<char> = None;
    let mut escaped = false;
    let flush = |key: &mut String, value: &mut Option<String>, pairs: &mut Vec<RawPair>| {
        if !key.is_empty() || value.is_some() {
            pairs.push(RawPair {
                key: std::mem::take(key),
                value: value.take(),
            });
        }
    };
    for c in line.trim().chars() {
        let target = |key: &mut String, value: &mut Option<String>, c: char| match value {
            Some(v) => v.push(c),
            None => key.push(c),
        };
        if escaped {
            target(&mut key, &mut value, c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if let Some(close) = closing {
            if c == close {
                closing = None;
            } else {
                target(&mut key, &mut value, c);
            }
        } else if let Some(close) = match c {
            '"' => Some('"'),
            '\'' => Some('\''),
            '{' => Some('}'),
            '[' => Some(']'),
            _ => None,
        } {
            closing = Some(close);
        } else if c.is_whitespace() {
            flush(&mut key, &mut value, &mut pairs);
        } else if c == '=' {
            match &mut value {
                // ASE joins any further `=` into the value: `smiles=C=O`.
                Some(v) => v.push('='),
                None => value = Some(String::new()),
            }
        } else {
            target(&mut key, &mut value, c);
        }
    }
    if let Some(close) = closing {
        return Err(format!("unterminated {close:?}-delimited value"));
    }
    flush(&mut key, &mut value, &mut pairs);
    Ok(pairs)
}

/// Interprets a raw value text the way ASE does.
pub fn interpret(text: &str) -> Value {
    let parts: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        return Value::Str(text.to_string());
    }
    if let Some(ints) = parts.iter().map(|p| p.parse::<i64>().ok()).collect::<Option<Vec<_>>>() {
        return if ints.len() == 1 {
            Value::Int(ints[0])
        } else {
            Value::Ints(ints)
        };
    }
    if let Some(floats) = parts.iter().map(|p| parse_f64(p)).collect::<Option<Vec<_>>>() {
        return if floats.len() == 1 {
            Value::Float(floats[0])
        } else {
            Value::Floats(floats)
        };
    }
    if let Some(bools) = parts.iter().map(|p| parse_bool(p)).collect::<Option<Vec<_>>>() {
        return if bools.len() == 1 {
            Value::Bool(bools[0])
        } else {
            Value::Bools(bools)
        };
    }
    Value::Str(text.to_string())
}

pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "T" | "True" | "true" | "TRUE" => Some(true),
        "F" | "False" | "false" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Formats a float so that it reads back bit-identical and is never mistaken for an integer.
pub fn format_float(x: f64) -> String {
    format!("{x:?}")
}

pub fn format_bool(b: bool) -> &'static str {
    if b {
        "T"
    } else {
        "F"
    }
}

/// Writes a value as ASE would, quoting where the grammar needs it.
pub fn format_value(value: &Value) -> String {
    fn join<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
        let joined: Vec<String> = items.iter().map(f).collect();
        format!("\"{}\"", joined.join(" "))
    }
    match value {
        Value::Bool(b) => format_bool(*b).to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(x) => format_float(*x),
        Value::Str(s) => quote_if_needed(s),
        Value::Bools(v) => join(v, |b| format_bool(*b).to_string()),
        Value::Ints(v) => join(v, |i| i.to_string()),
        Value::Floats(v) => join(v, |x| format_float(*x)),
    }
}

/// Quotes a key or string value when it holds whitespace, delimiters, `=` or backslashes.
pub fn quote_if_needed(s: &str) -> String {
    let special = |c: char| c.is_whitespace() || "\"'{}[]=\\".contains(c);
    if !s.is_empty() && !s.chars().any(special) {
        return s.to_string();
    }
    let mut quoted = String::with_capacity(s.len() + 2);
    quoted.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// Parses a whole comment line into its interpreted values, in order.
pub fn parse_line(line: &str) -> Result<IndexMap<String, (Value, String)>, String> {
    let mut map = IndexMap::new();
    for pair in split_pairs(line)? {
        let (value, raw) = match pair.value {
            Some(raw) => (interpret(&raw), raw),
            None => (Value::Bool(true), String::new()),
        };
        map.insert(pair.key, (value, raw));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(line: &str) -> Vec<(String, Value)> {
        parse_line(line)
            .unwrap()
            .into_iter()
            .map(|(k, (v, _))| (k, v))
            .collect()
    }

    #[test]
    fn parses_ase_value_kinds() {
        let v = values(r#"energy=-1.5 n=3 ok=T flags="T F T" cell="1 2 3" name='two words' bare x=[1.5, 2]"#);
        assert_eq!(v[0], ("energy".into(), Value::Float(-1.5)));
        assert_eq!(v[1], ("n".into(), Value::Int(3)));
        assert_eq!(v[2], ("ok".into(), Value::Bool(true)));
        assert_eq!(v[3], ("flags".into(), Value::Bools(vec![true, false, true])));
        assert_eq!(v[4], ("cell".into(), Value::Ints(vec![1, 2, 3])));
        assert_eq!(v[5], ("name".into(), Value::Str("two words".into())));
        assert_eq!(v[6], ("bare".into(), Value::Bool(true)));
        assert_eq!(v[7], ("x".into(), Value::Floats(vec![1.5, 2.0])));
    }

    #[test]
    fn keeps_equals_signs_and_escapes_inside_values() {
        let v = values(r#"smiles=C=O note="say \"hi\"""#);
        assert_eq!(v[0].1, Value::Str("C=O".into()));
        assert_eq!(v[1].1, Value::Str("say \"hi\"".into()));
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        assert!(parse_line(r#"a="open"#).is_err());
    }

    #[test]
    fn formatted_values_read_back_identically() {
        let cases = [
            Value::Float(1.0),
            Value::Float(-1.234567890123e-7),
            Value::Int(-42),
            Value::Bool(false),
            Value::Str("with space \"and quote\"".into()),
            Value::Str("C=O".into()),
            Value::Floats(vec![1.0, 2.5, -3e30]),
            Value::Ints(vec![1, 2]),
            Value::Bools(vec![true, false]),
        ];
        for value in cases {
            let line = format!("key={}", format_value(&value));
            assert_eq!(values(&line)[0].1, value, "{line}");
        }
    }
}
