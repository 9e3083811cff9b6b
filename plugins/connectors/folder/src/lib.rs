//! Built-in connector: folder.
