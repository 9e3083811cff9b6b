//! Integration tests of the folder connector, on real temporary directories.

mod config;
mod helpers;
mod modes;
mod resume;
mod selection;
mod sync;
