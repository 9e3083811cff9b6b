//! Connector service tests.
