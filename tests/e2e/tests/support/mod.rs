//! Helpers shared by e2e test files that declare `mod support;`.

pub mod fake_vault;
