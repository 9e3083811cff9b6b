//! The `connector.*` requests and their answers: the contract's
//! ([`tributary_proto::requests::connector`]), re-exported here. Every answer is a
//! [`NatsReply`](tributary_proto::requests::NatsReply): `{"ok": …}` or
//! `{"error": {"error": "<code>", "message": …}}`, the same envelope as `plugins.*`.

pub use tributary_proto::requests::connector::*;
