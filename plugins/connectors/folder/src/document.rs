//! One file as a document: reading it, hashing it, mapping it onto `DocumentFields`.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tracing::warn;
use tributary_proto::model::{DocumentFields, Extra};

use crate::markdown;
use crate::scan::ListedFile;

/// The extensions read as Markdown; every other one is plain text.
const MARKDOWN_EXTENSIONS: [&str; 2] = ["md", "markdown"];

/// A file's bytes, as read for one sync.
pub(crate) struct FileContent {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Their SHA-256, hex.
    pub sha256: String,
}

/// Why a file listed could not be turned into a document.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// Opening or reading it failed.
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    /// Its last component is a symbolic link now: one was swapped in after the listing.
    #[error("it became a symbolic link after the folder was listed; links are never followed, so it was not read")]
    Link,
    /// What was opened is not the regular file listed: the file, or a directory above it,
    /// was replaced (by a link to elsewhere, a device, another file) after the listing.
    #[error("it was replaced after the folder was listed (by a link, a device or another file), so it was not read")]
    Replaced,
    /// It grew past `maxFileBytes` after it was listed.
    #[error("the file grew past maxFileBytes ({max} bytes)")]
    TooLarge {
        /// The limit.
        max: u64,
    },
}

/// Reads the file listed as `file`, at most `max_bytes` of it, and hashes it.
///
/// The path is opened without following a link in its last component (`O_NOFOLLOW`), and
/// without blocking on a FIFO or device put there (`O_NONBLOCK`); then the open handle's own
/// metadata must be a regular file with the device and inode the listing saw. A file swapped
/// for a link between the listing and this read, or a directory above it swapped for a link
/// to elsewhere (which `O_NOFOLLOW` does not see), is therefore never read: what is read is
/// the file that was inside the folder when it was listed.
pub(crate) fn read(file: &ListedFile, max_bytes: u64) -> Result<FileContent, ReadError> {
    let opened = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&file.path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => ReadError::Link,
            _ => ReadError::Io(e),
        })?;
    let meta = opened.metadata()?;
    if !meta.is_file() || (meta.dev(), meta.ino()) != file.identity {
        return Err(ReadError::Replaced);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(file.size).unwrap_or(0));
    // One byte more than allowed tells a file that grew since it was listed.
    opened
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max_bytes {
        return Err(ReadError::TooLarge { max: max_bytes });
    }
    let sha256 = hex::encode(Sha256::digest(&bytes));
    Ok(FileContent { bytes, sha256 })
}

/// The document for `file` with `content`, and the raw payload kept with it: the path, size
/// and modification time, and for Markdown the source text (a plain text file's source text
/// is its `content` already).
///
/// Text that is not UTF-8 is decoded lossily (each invalid sequence becomes U+FFFD), with a
/// warning and `extra.lossy_utf8: true`: a Latin-1 note stays findable by most of its words
/// rather than missing. A leading byte order mark is dropped.
pub(crate) fn to_document(file: &ListedFile, content: FileContent) -> (DocumentFields, Value) {
    let size = content.bytes.len();
    let (mut text, lossy) = match String::from_utf8(content.bytes) {
        Ok(text) => (text, false),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
    };
    if lossy {
        warn!(path = %file.relative, "A file is not valid UTF-8; its invalid bytes were replaced.");
    }
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    let stem = file_stem(&file.relative).to_owned();

    let mut raw = json!({
        "path": file.relative,
        "size": size,
        "modified_at": file.mtime,
    });
    let (title, body, mime_type) = if is_markdown(&file.relative) {
        let extracted = markdown::extract(&text);
        raw["source"] = Value::String(text);
        (
            extracted.title.unwrap_or(stem),
            extracted.text,
            "text/markdown",
        )
    } else {
        (stem, text, "text/plain")
    };

    let mut extra = Extra::new();
    extra.insert("size".to_owned(), json!(size));
    if lossy {
        extra.insert("lossy_utf8".to_owned(), json!(true));
    }
    let fields = DocumentFields {
        title,
        path: Some(file.relative.clone()),
        mime_type: Some(mime_type.to_owned()),
        content: body,
        modified_at: Some(file.mtime),
        content_hash: Some(content.sha256),
        extra,
    };
    (fields, raw)
}

/// Whether the file at `relative` is read as Markdown.
fn is_markdown(relative: &str) -> bool {
    relative.rsplit_once('.').is_some_and(|(_, ext)| {
        MARKDOWN_EXTENSIONS
            .iter()
            .any(|m| m.eq_ignore_ascii_case(ext))
    })
}

/// The file name of `relative` without its extension: the title of a file that has none.
fn file_stem(relative: &str) -> &str {
    let name = relative.rsplit('/').next().unwrap_or(relative);
    match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    #[test]
    fn a_title_falls_back_to_the_file_stem() {
        assert_eq!(file_stem("notes/2024/plan.v2.md"), "plan.v2");
        assert_eq!(file_stem("README"), "README");
        assert!(is_markdown("a/B.MarkDown"));
        assert!(!is_markdown("a/b.txt"));
    }

    #[test]
    fn invalid_utf8_is_replaced_and_flagged_and_a_byte_order_mark_dropped() {
        let file = ListedFile {
            relative: "latin1.txt".into(),
            path: "/nowhere/latin1.txt".into(),
            mtime: DateTime::<Utc>::UNIX_EPOCH,
            size: 5,
            identity: (0, 0),
        };
        let content = FileContent {
            bytes: b"\xef\xbb\xbfcaf\xe9!".to_vec(),
            sha256: "h".into(),
        };
        let (fields, _) = to_document(&file, content);
        assert_eq!(fields.content, "caf\u{fffd}!");
        assert_eq!(fields.extra["lossy_utf8"], json!(true));
        assert_eq!(fields.title, "latin1");
    }
}
