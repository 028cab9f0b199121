//! OAuth credentials (DESIGN §5a): provider presets as data (`preset`).
pub mod preset;
pub mod refresh;
pub mod tokens;
pub mod login;
