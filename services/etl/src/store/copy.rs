//! Rows in PostgreSQL's `COPY … FROM STDIN` text format, for the rows a batch knows are new:
//! entities with a fresh id and source records never seen before. `COPY` is the cheapest way
//! to insert many rows; it has no `ON CONFLICT`, and needs none for them (a source record
//! another writer inserted meanwhile fails the batch with a unique violation, which is
//! retried like any other conflict).

use serde_json::Value;

/// The text of a `COPY` data stream, a row at a time.
#[derive(Debug, Default)]
pub struct CopyText {
    buf: Vec<u8>,
    in_row: bool,
    /// Where a JSON value is written before it is escaped into `buf`.
    scratch: Vec<u8>,
}

impl CopyText {
    /// The bytes to send.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn separate(&mut self) {
        if self.in_row {
            self.buf.push(b'\t');
        }
        self.in_row = true;
    }

    /// Ends the current row.
    pub fn end_row(&mut self) {
        self.buf.push(b'\n');
        self.in_row = false;
    }

    /// A NULL.
    pub fn null(&mut self) {
        self.separate();
        self.buf.extend_from_slice(b"\\N");
    }

    /// A text value (also how uuid, timestamptz and numbers are written).
    pub fn text(&mut self, value: &str) {
        self.separate();
        escape_into(&mut self.buf, value);
    }

    /// A boolean.
    pub fn bool(&mut self, value: bool) {
        self.separate();
        self.buf.push(if value { b't' } else { b'f' });
    }

    /// A JSON value, for a `json` or `jsonb` column.
    pub fn json(&mut self, value: &Value) {
        self.separate();
        // serde_json writes control characters as escapes, so only backslashes need doubling.
        // Writing a `Value` into memory cannot fail.
        self.scratch.clear();
        let _ = serde_json::to_writer(&mut self.scratch, value);
        escape_bytes_into(&mut self.buf, &self.scratch);
    }

    /// A `text[]` value from a JSON array (of strings; anything else is written as its JSON).
    pub fn text_array(&mut self, elements: &[Value]) {
        self.separate();
        let mut literal = String::from("{");
        for (i, element) in elements.iter().enumerate() {
            if i > 0 {
                literal.push(',');
            }
            literal.push('"');
            let owned;
            let text = match element {
                Value::String(s) => s.as_str(),
                other => {
                    owned = other.to_string();
                    owned.as_str()
                }
            };
            for c in text.chars() {
                if c == '"' || c == '\\' {
                    literal.push('\\');
                }
                literal.push(c);
            }
            literal.push('"');
        }
        literal.push('}');
        escape_into(&mut self.buf, &literal);
    }

    /// A column of a row built from JSON: null, text, boolean, number, `text[]` for an array
    /// and `jsonb` for an object. (Every `jsonb` column of the unified model holds an object,
    /// and every array is a `text[]`.)
    pub fn value(&mut self, value: Option<&Value>) {
        match value {
            None | Some(Value::Null) => self.null(),
            Some(Value::String(s)) => self.text(s),
            Some(Value::Bool(b)) => self.bool(*b),
            Some(Value::Number(n)) => self.text(&n.to_string()),
            Some(Value::Array(elements)) => self.text_array(elements),
            Some(object @ Value::Object(_)) => self.json(object),
        }
    }

    /// A whole row from a JSON object: its `columns`, in order (a missing one is NULL).
    pub fn object_row(&mut self, columns: &[&str], row: &Value) {
        for column in columns {
            self.value(row.get(*column));
        }
        self.end_row();
    }
}

/// Appends `value` escaped for the text format: backslash, newline, carriage return and tab
/// are the characters that would otherwise end a column or a row.
fn escape_into(buf: &mut Vec<u8>, value: &str) {
    escape_bytes_into(buf, value.as_bytes());
}

/// [`escape_into`] for UTF-8 bytes (escaping never splits a character: every byte it
/// escapes is ASCII).
fn escape_bytes_into(buf: &mut Vec<u8>, bytes: &[u8]) {
    // Most values have none of the four; looking for them is faster than copying byte by byte.
    if memchr::memchr3(b'\\', b'\n', b'\t', bytes).is_none()
        && memchr::memchr(b'\r', bytes).is_none()
    {
        buf.extend_from_slice(bytes);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        buf.extend_from_slice(escaped);
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(values: &[Value]) -> String {
        let mut copy = CopyText::default();
        for v in values {
            copy.value(Some(v));
        }
        copy.end_row();
        String::from_utf8(copy.into_bytes()).unwrap()
    }

    #[test]
    fn columns_are_tab_separated_and_rows_end_with_a_newline() {
        assert_eq!(
            row(&[json!("a"), json!(null), json!(true), json!(3), json!(false)]),
            "a\t\\N\tt\t3\tf\n"
        );
    }

    #[test]
    fn characters_that_would_end_a_column_or_row_are_escaped() {
        assert_eq!(
            row(&[json!("tab\there\nnew\rline \\ back")]),
            "tab\\there\\nnew\\rline \\\\ back\n"
        );
    }

    #[test]
    fn arrays_are_quoted_array_literals() {
        assert_eq!(row(&[json!([])]), "{}\n");
        // In the literal: "a,b" and "say \"hi\"" and "back\\slash"; then COPY doubles each
        // backslash.
        assert_eq!(
            row(&[json!(["a,b", "say \"hi\"", "back\\slash"])]),
            "{\"a,b\",\"say \\\\\"hi\\\\\"\",\"back\\\\\\\\slash\"}\n"
        );
    }

    #[test]
    fn objects_are_json_with_backslashes_doubled() {
        assert_eq!(
            row(&[json!({"k": "line\nbreak \"q\""})]),
            "{\"k\":\"line\\\\nbreak \\\\\"q\\\\\"\"}\n"
        );
    }
}
