//! Readers and writers for minima: extxyz (ASE's conventions) and QM9's original layout.

mod atomic;
mod error;
pub mod extxyz;
pub mod keyval;
pub mod number;
pub mod qm9;

pub use atomic::{commit, temporary_sibling, write_atomic};
pub use error::ReadError;
