//! Configuration from environment variables with sane local defaults (DESIGN.md §7).
//!
//! Each service builds its own typed settings from these helpers once at start-up; tests build
//! settings in code and never touch the process environment.

use std::str::FromStr;

/// A configuration value that could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}: {message}")]
pub struct ConfigError {
    pub name: String,
    pub message: String,
}

/// The value of `name`, or `default` when unset or empty.
pub fn var_or(name: &str, default: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => default.to_owned(),
    }
}

/// The value of `name` when set and non-empty.
pub fn var_opt(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `name` parsed as `T`, or `default` when unset.
pub fn parse_or<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match var_opt(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|e: T::Err| ConfigError {
            name: name.into(),
            message: e.to_string(),
        }),
    }
}

/// What every service needs to reach the shared servers.
#[derive(Debug, Clone)]
pub struct CoreSettings {
    /// PostgreSQL server URL without a database; each service appends its own (`JIFEN_DATABASE_URL`).
    pub database_url: String,
    /// RabbitMQ URL (`JIFEN_AMQP_URL`).
    pub amqp_url: String,
    /// Redis URL (`JIFEN_REDIS_URL`).
    pub redis_url: String,
    /// Prefix of exchange and queue names (`JIFEN_BUS_PREFIX`, empty in production).
    pub bus_prefix: String,
    /// OTLP endpoint; tracing export is off when unset (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub otlp_endpoint: Option<String>,
    /// Directory of JWT keys: `<kid>.pub.pem` verify, `<kid>.key.pem` sign (`JIFEN_JWT_KEYS_DIR`).
    pub jwt_keys_dir: String,
}

impl CoreSettings {
    pub fn from_env() -> Self {
        Self {
            database_url: var_or("JIFEN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432"),
            amqp_url: var_or("JIFEN_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
            redis_url: var_or("JIFEN_REDIS_URL", "redis://127.0.0.1:6379"),
            bus_prefix: var_or("JIFEN_BUS_PREFIX", ""),
            otlp_endpoint: var_opt("OTEL_EXPORTER_OTLP_ENDPOINT"),
            jwt_keys_dir: var_or("JIFEN_JWT_KEYS_DIR", ".run/keys"),
        }
    }
}
