//! The mesh client, which lives in kit ([`tributary_kit::client`]); re-exported here for the
//! callers that still name it through the plugin manager.

pub use tributary_kit::client::*;
