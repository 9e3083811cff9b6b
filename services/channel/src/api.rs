//! What `channel.send.<instance>` takes and answers, what `channel.routes` lists and what
//! `channel.webhook` tells of one instance: the contract's
//! ([`tributary_proto::requests::channel`]), re-exported here, shared by the service, the CLI
//! and any program in the mesh.

pub use tributary_proto::requests::channel::*;
