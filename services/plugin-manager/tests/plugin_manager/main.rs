//! The plugin manager against the real NATS and PostgreSQL: each test has its own database,
//! subject prefix and plugin directory.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod add_plugin;
mod admin_api;
mod audit_actor;
mod bad_input;
mod configs;
mod console;
mod console_add_plugin;
mod console_lifecycle;
mod dead_letters;
mod declared_errors;
mod discovery;
mod lifecycle;
mod oauth;
mod plugin_type_split;
mod reinstall;
mod secret_binding;
mod secrets;
mod support;
mod timeline;
