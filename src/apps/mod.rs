//! Applications that ship with the server, each an ordinary [`crate::Handler`].
//!
//! Owns [`static_files`], the handler behind the `maitred [DIR]` binary. Never reaches into
//! the engine: an app sees a [`crate::Request`] and returns a [`crate::Response`], like any
//! user's handler.

pub mod static_files;
