//! Built-in connector: dav.
