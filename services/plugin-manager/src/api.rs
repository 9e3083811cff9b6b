//! What the plugin manager's APIs take and give: the same types on NATS (`plugins.*`) and on
//! the admin HTTP API, so the CLI, the other services and scripts read one shape. They are
//! the contract's ([`tributary_proto::requests::plugins`]), re-exported here.

pub use tributary_proto::requests::plugins::*;
pub use tributary_proto::requests::{ApiError, ErrorCode, NatsReply};
