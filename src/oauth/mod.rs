//! OAuth credentials (DESIGN §5a): provider presets as data (`preset`).
pub mod login;
pub mod preset;
pub mod refresh;
pub mod tokens;
