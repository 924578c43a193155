//! Per-stage lock files: canonical encode and validated decode (docs/formats.md, "Lock file").
//!
//! Canonical bytes are JSON that is also YAML 1.2 (and parses identically with PyYAML): top-level
//! keys in the fixed order `schema_version, stage, code, params, deps, outs`; one map entry per
//! line at the second level, 2-space indent; values below that are compact JSON with keys sorted
//! bytewise; floats always carry a `.` and a signed exponent (`1.0e+20`) so YAML 1.1 readers see
//! floats; control characters escaped. Same data → same bytes.
//!
//! Decode accepts any JSON with the right shape (hand-merged locks need not be canonical) and
//! names the file and the field in every error.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde_json::{Map, Value};

use crate::atomic;
use crate::error::{Error, IoContext, Result};
use crate::hash::is_hex64;
use crate::manifest::write_json_bytes;

pub const SCHEMA_VERSION: i64 = 1;
/// Locks are small; anything larger is not a lock (and must not exhaust memory).
pub const MAX_LOCK_BYTES: u64 = 16 << 20;
const TOP: [&str; 6] = ["schema_version", "stage", "code", "params", "deps", "outs"];
const OUT_KEYS: [&str; 5] = ["cache", "hash", "is_dir", "nfiles", "size"];

fn q(s: &str) -> String {
    let mut v = Vec::new();
    write_json_bytes(&mut v, s.as_bytes());
    String::from_utf8(v).expect("escaped UTF-8 stays UTF-8")
}

/// Validate a parsed lock; `src` names the file in errors.
fn validate(v: &Value, src: &Path) -> Result<()> {
    let err = |field: &str, msg: &str| Error::lock(src, field, msg);
    let root = v
        .as_object()
        .ok_or_else(|| err("(root)", "expected a JSON object"))?;
    // The version first: a newer pivot may have added fields we do not know.
    match root.get("schema_version") {
        None => return Err(err("schema_version", "missing")),
        Some(s) => match s.as_i64() {
            Some(n) if n > SCHEMA_VERSION => {
                return Err(Error::SchemaVersion {
                    path: src.into(),
                    found: n,
                })
            }
            Some(SCHEMA_VERSION) => {}
            _ => {
                return Err(err(
                    "schema_version",
                    &format!("expected {SCHEMA_VERSION}, found {s}"),
                ))
            }
        },
    }
    for k in root.keys() {
        if !TOP.contains(&k.as_str()) {
            return Err(err(k, "unknown field"));
        }
    }
    for k in TOP {
        if !root.contains_key(k) {
            return Err(err(k, "missing"));
        }
    }
    match root["stage"].as_str() {
        Some(s) if !s.is_empty() && !s.chars().any(char::is_control) => {}
        _ => {
            return Err(err(
                "stage",
                "expected a non-empty string without control characters",
            ))
        }
    }
    let obj = |k: &str| -> Result<&Map<String, Value>> {
        root[k]
            .as_object()
            .ok_or_else(|| err(k, "expected a JSON object"))
    };
    for (name, d) in obj("code")? {
        let f = format!("code[{}]", q(name));
        let ok = d.as_str().is_some_and(|s| {
            !s.is_empty()
                && s.len() <= 128
                && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if name.is_empty() || !ok {
            return Err(err(&f, "expected a lowercase hex digest"));
        }
    }
    obj("params")?;
    for (p, h) in obj("deps")? {
        let f = format!("deps[{}]", q(p));
        check_path(p).map_err(|m| err(&f, m))?;
        if !h.as_str().is_some_and(is_hex64) {
            return Err(err(&f, "not a 64-hex blake3 hash"));
        }
    }
    for (p, o) in obj("outs")? {
        let f = format!("outs[{}]", q(p));
        check_path(p).map_err(|m| err(&f, m))?;
        let o = o
            .as_object()
            .ok_or_else(|| err(&f, "expected a JSON object"))?;
        for k in o.keys() {
            if !OUT_KEYS.contains(&k.as_str()) {
                return Err(err(&format!("{f}.{k}"), "unknown field"));
            }
        }
        let field = |k: &str| -> Result<&Value> {
            o.get(k).ok_or_else(|| err(&format!("{f}.{k}"), "missing"))
        };
        if !field("hash")?.as_str().is_some_and(is_hex64) {
            return Err(err(&format!("{f}.hash"), "not a 64-hex blake3 hash"));
        }
        for k in ["size", "nfiles"] {
            if field(k)?.as_u64().is_none() {
                return Err(err(&format!("{f}.{k}"), "expected a non-negative integer"));
            }
        }
        for k in ["is_dir", "cache"] {
            if !field(k)?.is_boolean() {
                return Err(err(&format!("{f}.{k}"), "expected true or false"));
            }
        }
    }
    Ok(())
}

/// Why a project-relative path recorded in a lock is unsafe, if it is. Directory outputs may
/// end with `/`.
pub fn check_path(p: &str) -> std::result::Result<(), &'static str> {
    if p.contains('\n') || p.contains('\r') {
        return Err("path contains a newline");
    }
    let trimmed = p.strip_suffix('/').unwrap_or(p);
    crate::manifest::check_rel_path(trimmed.as_bytes()).map_err(|m| match m {
        "absolute path" => "path is absolute",
        "contains '..'" => "path contains '..'",
        "contains NUL" => "path contains NUL",
        other => other,
    })
}

/// Compact canonical JSON: sorted keys, no spaces, normalised floats.
fn write_compact(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number(n)),
        Value::String(s) => out.push_str(&q(s)),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_compact(out, x);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in sorted(m).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&q(k));
                out.push(':');
                write_compact(out, x);
            }
            out.push('}');
        }
    }
}

fn sorted(m: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut v: Vec<_> = m.iter().collect();
    v.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    v
}

/// Integers as is; floats in shortest round-trip form with a `.` and a signed exponent.
fn number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let s = n.to_string();
    let (mant, exp) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m.to_string(), Some(e.to_string())),
        None => (s.clone(), None),
    };
    let mant = if mant.contains('.') {
        mant
    } else {
        format!("{mant}.0")
    };
    match exp {
        None => mant,
        Some(e) if e.starts_with(['-', '+']) => format!("{mant}e{e}"),
        Some(e) => format!("{mant}e+{e}"),
    }
}

fn encode_value(v: &Value) -> Vec<u8> {
    let root = v.as_object().expect("validated");
    let mut out = String::from("{\n");
    for (i, k) in TOP.iter().enumerate() {
        out.push_str("  ");
        out.push_str(&q(k));
        out.push_str(": ");
        let x = &root[*k];
        match x {
            Value::Object(m) if !m.is_empty() => {
                out.push_str("{\n");
                let items = sorted(m);
                for (j, (mk, mv)) in items.iter().enumerate() {
                    out.push_str("    ");
                    out.push_str(&q(mk));
                    out.push_str(": ");
                    write_compact(&mut out, mv);
                    if j + 1 < items.len() {
                        out.push(',');
                    }
                    out.push('\n');
                }
                out.push_str("  }");
            }
            _ => write_compact(&mut out, x),
        }
        if i + 1 < TOP.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str("}\n");
    out.into_bytes()
}

fn parse(data: &[u8], src: &Path) -> Result<Value> {
    let content = |msg: String| Error::lock(src, "(content)", msg);
    if data.len() as u64 > MAX_LOCK_BYTES {
        return Err(content(format!("larger than {MAX_LOCK_BYTES} bytes")));
    }
    let text = std::str::from_utf8(data).map_err(|e| content(format!("not valid UTF-8 ({e})")))?;
    if text.trim().is_empty() {
        return Err(content("empty file".into()));
    }
    for (i, line) in text.lines().enumerate() {
        if ["<<<<<<<", "=======", ">>>>>>>", "|||||||"]
            .iter()
            .any(|m| line.starts_with(m))
        {
            return Err(content(format!(
                "contains a git conflict marker at line {}; resolve the merge",
                i + 1
            )));
        }
    }
    serde_json::from_str(text).map_err(|e| content(format!("not valid JSON ({e})")))
}

/// Canonical lock bytes for the lock given as JSON text (validated first).
pub fn encode(json_text: &str, src: &Path) -> Result<Vec<u8>> {
    let v = parse(json_text.as_bytes(), src)?;
    validate(&v, src)?;
    Ok(encode_value(&v))
}

/// Validate lock bytes read from `src`; returns compact JSON text (top-level keys in order).
pub fn decode(data: &[u8], src: &Path) -> Result<String> {
    let v = parse(data, src)?;
    validate(&v, src)?;
    let root = v.as_object().expect("validated");
    let mut out = String::from("{");
    for (i, k) in TOP.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&q(k));
        out.push(':');
        write_compact(&mut out, &root[*k]);
    }
    out.push('}');
    Ok(out)
}

/// Read (size-capped) and decode; `None` if the file does not exist.
pub fn read(path: &Path) -> Result<Option<String>> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut data = Vec::new();
    // Read one byte past the cap so an oversized file is detected without reading all of it.
    f.take(MAX_LOCK_BYTES + 1).read_to_end(&mut data).at(path)?;
    decode(&data, path).map(Some)
}

/// Encode and durably write (kill point `lock_write`).
pub fn write(path: &Path, json_text: &str) -> Result<()> {
    let bytes = encode(json_text, path)?;
    atomic::write_atomic(path, &bytes, Some("lock_write"))
}

#[cfg(test)]
mod tests;
