//! Credentials: what a provider call authenticates with (`credential`), where they come
//! from (`profiles` in auth-profiles.json, `env_keys`), and the `Resolver` that lists a
//! turn's candidates in the order to try them.

pub mod cooldown;
pub mod credential;
pub mod env_keys;
pub mod profile_writer;
pub mod profiles;
pub mod resolver;
pub mod secrets;

pub use credential::{Credential, CredentialKind, CredentialSource};
pub use resolver::{Candidate, CredentialResolver, Health, ProfileInfo, Resolution, ResolveError};
