//! OAuth credentials (DESIGN §5a): provider presets as data (`preset`).
pub mod preset;
