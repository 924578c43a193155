//! Byte-level manifest line codec: JSON strings for raw path bytes (surrogateescape for bytes
//! that are not UTF-8) and the strict parser for one canonical line.

use super::Entry;
use crate::hash;

pub(super) fn encode_entry(out: &mut Vec<u8>, e: &Entry) {
    out.extend_from_slice(b"{\"path\":");
    write_json_bytes(out, &e.path);
    out.extend_from_slice(b",\"hash\":\"");
    out.extend_from_slice(e.hash.as_bytes());
    out.extend_from_slice(b"\",\"size\":");
    out.extend_from_slice(e.size.to_string().as_bytes());
    out.extend_from_slice(if e.exec {
        b",\"exec\":true"
    } else {
        b",\"exec\":false"
    });
    if let Some(t) = &e.link {
        out.extend_from_slice(b",\"link\":");
        write_json_bytes(out, t);
    }
    out.extend_from_slice(b"}\n");
}

/// Write raw bytes as a JSON string: UTF-8 text literally, `"`/`\` and control characters
/// (C0, DEL, C1) escaped, each byte that is not valid UTF-8 as `\udcXX` (surrogateescape).
/// The output is also a valid YAML 1.2 double-quoted scalar.
pub fn write_json_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\u{8}' => out.extend_from_slice(b"\\b"),
                '\u{c}' => out.extend_from_slice(b"\\f"),
                // C0, DEL, C1 and the two non-characters YAML forbids unescaped.
                c if (c as u32) < 0x20
                    || (0x7f..=0x9f).contains(&(c as u32))
                    || c == '\u{fffe}'
                    || c == '\u{ffff}' =>
                {
                    out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
                }
                c => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        for b in chunk.invalid() {
            out.extend_from_slice(format!("\\udc{b:02x}").as_bytes());
        }
    }
    out.push(b'"');
}

/// Decode the escape of a manifest JSON string that follows a backslash at the start of `s`
/// (inverse of `write_json_bytes`: the short escapes, `\uXXXX`, and `\udcXX` for a byte that
/// is not UTF-8, as Python's surrogateescape), appending its raw bytes to `out`; the number of
/// bytes of `s` it used.
pub fn decode_escape(after: &[u8], out: &mut Vec<u8>) -> Result<usize, &'static str> {
    let kind = *after.first().ok_or("unterminated escape")?;
    let byte = match kind {
        b'"' | b'\\' => kind,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'b' => 8,
        b'f' => 12,
        b'u' => {
            let digits = after.get(1..5).ok_or("truncated \\u escape")?;
            let text = std::str::from_utf8(digits).map_err(|_| "bad \\u escape")?;
            let code = u32::from_str_radix(text, 16).map_err(|_| "bad \\u escape")?;
            if (0xdc80..=0xdcff).contains(&code) {
                // A raw byte that is not UTF-8 (surrogateescape): the low byte.
                out.push(code.to_le_bytes()[0]);
            } else {
                let ch = char::from_u32(code).ok_or("bad \\u escape (surrogate)")?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            return Ok(5);
        }
        _ => return Err("bad escape"),
    };
    out.push(byte);
    Ok(1)
}

/// A tiny strict cursor over one manifest line.
struct Cur<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cur<'_> {
    fn lit(&mut self, l: &[u8]) -> Result<(), String> {
        if self.s[self.i..].starts_with(l) {
            self.i += l.len();
            Ok(())
        } else {
            Err(format!("expected {}", String::from_utf8_lossy(l)))
        }
    }

    fn peek(&self, l: &[u8]) -> bool {
        self.s[self.i..].starts_with(l)
    }

    /// A JSON string as raw bytes (inverse of `write_json_bytes`).
    fn string(&mut self) -> Result<Vec<u8>, String> {
        self.lit(b"\"")?;
        let mut out = Vec::new();
        loop {
            let b = *self.s.get(self.i).ok_or("unterminated string")?;
            self.i += 1;
            match b {
                b'"' => return Ok(out),
                b'\\' => self.i += decode_escape(&self.s[self.i..], &mut out)?,
                b if b < 0x20 => return Err("control character in string".into()),
                b => out.push(b),
            }
        }
    }

    /// Step over a JSON string without decoding it (the scan needs only what follows).
    fn skip_string(&mut self) -> Result<(), String> {
        self.lit(b"\"")?;
        loop {
            match *self.s.get(self.i).ok_or("unterminated string")? {
                b'"' => {
                    self.i += 1;
                    return Ok(());
                }
                // An escape is at least two bytes and never hides a quote from this scan.
                b'\\' => self.i += 2,
                _ => self.i += 1,
            }
        }
    }

    fn uint(&mut self) -> Result<u64, String> {
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| "expected a size".to_string())
    }
}

pub(super) fn parse_line(bytes: &[u8]) -> Result<Entry, String> {
    let mut c = Cur { s: bytes, i: 0 };
    c.lit(b"{\"path\":")?;
    let path = c.string()?;
    c.lit(b",\"hash\":")?;
    let h = c.string()?;
    let hash = String::from_utf8(h).map_err(|_| "bad hash")?;
    if !hash::is_hex64(&hash) {
        return Err(format!("hash {hash:?} is not a 64-hex blake3 hash"));
    }
    c.lit(b",\"size\":")?;
    let size = c.uint()?;
    c.lit(b",\"exec\":")?;
    let exec = if c.peek(b"true") {
        c.lit(b"true")?;
        true
    } else {
        c.lit(b"false")?;
        false
    };
    let link = if c.peek(b",\"link\":") {
        c.lit(b",\"link\":")?;
        Some(c.string()?)
    } else {
        None
    };
    c.lit(b"}")?;
    if c.i != bytes.len() {
        return Err("trailing bytes after entry".into());
    }
    Ok(Entry {
        path,
        hash,
        size,
        exec,
        link,
    })
}

/// The raw blake3 name of one manifest line's file, or None for a symlink entry. A lenient
/// scan for bytes already verified against their name (they were written by `to_bytes`):
/// no allocation, no path decoding, no canonical-form check.
pub(super) fn scan_file_hash(line: &[u8]) -> Result<Option<[u8; 32]>, String> {
    let mut c = Cur { s: line, i: 0 };
    c.lit(b"{\"path\":")?;
    c.skip_string()?;
    c.lit(b",\"hash\":\"")?;
    let hex = line.get(c.i..c.i + 64).ok_or("truncated hash")?;
    let raw = hash::raw_from_hex(hex).ok_or("hash is not 64 lowercase hex digits")?;
    c.i += 64;
    c.lit(b"\",\"size\":")?;
    c.uint()?;
    c.lit(b",\"exec\":")?;
    if c.peek(b"true") {
        c.lit(b"true")?;
    } else {
        c.lit(b"false")?;
    }
    Ok((!c.peek(b",\"link\":")).then_some(raw))
}
