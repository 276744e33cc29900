//! Configuration from environment variables with sane local defaults (DESIGN.md §7).
//!
//! Each service builds its own typed settings from these helpers once at start-up; tests build
//! settings in code and never touch the process environment.
//!
//! Invariants:
//! * every variable `JIFEN_X` (and `OTEL_…`) may instead be given as `JIFEN_X_FILE=/path`, whose
//!   content, trimmed, is the value: Kubernetes mounts Secrets as files. Setting both is an error,
//!   and so is a `_FILE` that cannot be read; an empty value (or empty file) counts as unset;
//! * the lookup is a function ([`Env`]), so the rules above are unit-tested with a map instead of
//!   the process environment.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// A configuration value that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}: {message}")]
pub struct ConfigError {
    pub name: String,
    pub message: String,
}

/// Suffix of the variable that names a file holding another variable's value.
pub const FILE_SUFFIX: &str = "_FILE";

/// Looks a variable up by name.
pub type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Where settings come from: a lookup of a variable by name. [`Env::process`] reads the process
/// environment; tests use [`Env::from_pairs`].
#[derive(Clone)]
pub struct Env {
    lookup: Arc<Lookup>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Env")
    }
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self::from_fn(|name| std::env::var(name).ok())
    }

    /// Any lookup function.
    pub fn from_fn(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self {
            lookup: Arc::new(lookup),
        }
    }

    /// A fixed set of variables (tests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let map: std::collections::HashMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self::from_fn(move |name| map.get(name).cloned())
    }

    fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// The value of `name` when set and non-empty, directly or through `<name>_FILE`.
    pub fn var_opt(&self, name: &str) -> Result<Option<String>, ConfigError> {
        let file_var = format!("{name}{FILE_SUFFIX}");
        match (self.raw(name), self.raw(&file_var)) {
            (Some(_), Some(_)) => Err(ConfigError {
                name: name.into(),
                message: format!("both {name} and {file_var} are set; set one"),
            }),
            (Some(value), None) => Ok(Some(value)),
            (None, Some(path)) => {
                let content = std::fs::read_to_string(path.trim()).map_err(|e| ConfigError {
                    name: file_var.clone(),
                    message: format!("cannot read {}: {e}", path.trim()),
                })?;
                let value = content.trim();
                Ok((!value.is_empty()).then(|| value.to_owned()))
            }
            (None, None) => Ok(None),
        }
    }

    /// The value of `name`, or `default` when unset or empty.
    pub fn var_or(&self, name: &str, default: &str) -> Result<String, ConfigError> {
        Ok(self.var_opt(name)?.unwrap_or_else(|| default.to_owned()))
    }

    /// `name` parsed as `T`, or `default` when unset.
    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.var_opt(name)? {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError {
                name: name.into(),
                message: e.to_string(),
            }),
        }
    }
}

/// The value of `name` (or of the file `<name>_FILE` names) in the process environment.
pub fn var_opt(name: &str) -> Result<Option<String>, ConfigError> {
    Env::process().var_opt(name)
}

/// The value of `name` in the process environment, or `default` when unset or empty.
pub fn var_or(name: &str, default: &str) -> Result<String, ConfigError> {
    Env::process().var_or(name, default)
}

/// `name` in the process environment parsed as `T`, or `default` when unset.
pub fn parse_or<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    Env::process().parse_or(name, default)
}

/// `JIFEN_BUS_RETENTION_DAYS` (default 7) as a duration; 0 would forget every inbox row at
/// once, so it must be from 1 to 3,650.
fn retention_days(env: &Env) -> Result<Duration, ConfigError> {
    const NAME: &str = "JIFEN_BUS_RETENTION_DAYS";
    match env.parse_or::<u64>(NAME, 7)? {
        days @ 1..=3650 => Ok(Duration::from_secs(days * 24 * 3600)),
        days => Err(ConfigError {
            name: NAME.into(),
            message: format!("must be a number of days from 1 to 3650, not {days}"),
        }),
    }
}

/// Default drain period after SIGTERM, in seconds (see [`CoreSettings::shutdown_drain`]).
pub const DEFAULT_SHUTDOWN_DRAIN_SECS: u64 = 5;

/// What every service needs to reach the shared servers, and how it starts and stops.
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
    /// How long published outbox rows and inbox rows are kept (`JIFEN_BUS_RETENTION_DAYS`,
    /// default 7): the event bus's retention sweep deletes older ones. Keep it longer than any
    /// message may wait in a queue, dead-letter queues included (an inbox row is what makes a
    /// redelivery a duplicate).
    pub bus_retention: Duration,
    /// OTLP endpoint; tracing export is off when unset (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub otlp_endpoint: Option<String>,
    /// Directory of JWT keys: `<kid>.pub.pem` verify, `<kid>.key.pem` sign (`JIFEN_JWT_KEYS_DIR`).
    pub jwt_keys_dir: String,
    /// Apply pending migrations at start-up (`JIFEN_MIGRATE_ON_START`, default `true`). When
    /// `false` the service only checks that none is pending: production runs
    /// `jifen-<service> migrate` as a Job before rolling out.
    pub migrate_on_start: bool,
    /// After SIGTERM, how long the service keeps serving while reporting NOT_SERVING and failing
    /// `/readyz`, so load balancers stop sending before the servers stop
    /// (`JIFEN_SHUTDOWN_DRAIN_SECS`, default 5).
    pub shutdown_drain: Duration,
}

impl CoreSettings {
    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&Env::process())
    }

    /// From `env`.
    pub fn from(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            database_url: env.var_or("JIFEN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432")?,
            amqp_url: env.var_or("JIFEN_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")?,
            redis_url: env.var_or("JIFEN_REDIS_URL", "redis://127.0.0.1:6379")?,
            bus_prefix: env.var_or("JIFEN_BUS_PREFIX", "")?,
            bus_retention: retention_days(env)?,
            otlp_endpoint: env.var_opt("OTEL_EXPORTER_OTLP_ENDPOINT")?,
            jwt_keys_dir: env.var_or("JIFEN_JWT_KEYS_DIR", ".run/keys")?,
            migrate_on_start: env.parse_or("JIFEN_MIGRATE_ON_START", true)?,
            shutdown_drain: Duration::from_secs(
                env.parse_or("JIFEN_SHUTDOWN_DRAIN_SECS", DEFAULT_SHUTDOWN_DRAIN_SECS)?,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_value_may_come_from_the_file_its_file_variable_names() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("amqp-url");
        std::fs::write(&secret, "  amqp://jifen:s3cret@rabbitmq:5672/%2f\n").unwrap();
        let env = Env::from_pairs([
            ("JIFEN_AMQP_URL_FILE", secret.display().to_string()),
            ("JIFEN_BUS_PREFIX", "direct".to_owned()),
        ]);
        assert_eq!(
            env.var_opt("JIFEN_AMQP_URL").unwrap().as_deref(),
            Some("amqp://jifen:s3cret@rabbitmq:5672/%2f"),
            "the file's content, trimmed"
        );
        assert_eq!(env.var_or("JIFEN_BUS_PREFIX", "x").unwrap(), "direct");
        assert_eq!(env.var_or("JIFEN_REDIS_URL", "dflt").unwrap(), "dflt");
        let core = CoreSettings::from(&env).unwrap();
        assert_eq!(core.amqp_url, "amqp://jifen:s3cret@rabbitmq:5672/%2f");
        assert!(core.migrate_on_start);
        assert_eq!(
            core.shutdown_drain,
            Duration::from_secs(DEFAULT_SHUTDOWN_DRAIN_SECS)
        );
    }

    #[test]
    fn parsed_values_and_flags_also_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("migrate");
        std::fs::write(&flag, "false\n").unwrap();
        let env = Env::from_pairs([
            ("JIFEN_MIGRATE_ON_START_FILE", flag.display().to_string()),
            ("JIFEN_SHUTDOWN_DRAIN_SECS", "0".to_owned()),
        ]);
        let core = CoreSettings::from(&env).unwrap();
        assert!(!core.migrate_on_start);
        assert_eq!(core.shutdown_drain, Duration::ZERO);
    }

    #[test]
    fn both_forms_an_unreadable_file_or_a_bad_value_are_errors_naming_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("url");
        std::fs::write(&file, "redis://a").unwrap();
        let both = Env::from_pairs([
            ("JIFEN_REDIS_URL", "redis://b".to_owned()),
            ("JIFEN_REDIS_URL_FILE", file.display().to_string()),
        ]);
        assert_eq!(
            both.var_opt("JIFEN_REDIS_URL").unwrap_err().name,
            "JIFEN_REDIS_URL"
        );
        let missing = Env::from_pairs([(
            "JIFEN_PII_KEY_FILE",
            dir.path().join("nope").display().to_string(),
        )]);
        let error = missing.var_opt("JIFEN_PII_KEY").unwrap_err();
        assert_eq!(error.name, "JIFEN_PII_KEY_FILE");
        assert!(error.message.contains("cannot read"), "{error}");
        let bad = Env::from_pairs([("JIFEN_MIGRATE_ON_START", "yes please")]);
        assert_eq!(
            CoreSettings::from(&bad).unwrap_err().name,
            "JIFEN_MIGRATE_ON_START"
        );
    }

    #[test]
    fn empty_values_and_empty_files_count_as_unset() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let env = Env::from_pairs([
            ("JIFEN_BUS_PREFIX", "  ".to_owned()),
            ("JIFEN_REDIS_URL_FILE", empty.display().to_string()),
        ]);
        assert_eq!(env.var_opt("JIFEN_BUS_PREFIX").unwrap(), None);
        assert_eq!(env.var_opt("JIFEN_REDIS_URL").unwrap(), None);
    }

    #[test]
    fn the_bus_keeps_its_rows_a_week_unless_told_otherwise_and_never_zero_days() {
        let week = CoreSettings::from(&Env::from_pairs([("JIFEN_BUS_PREFIX", "x")])).unwrap();
        assert_eq!(week.bus_retention, Duration::from_secs(7 * 24 * 3600));
        let month = Env::from_pairs([("JIFEN_BUS_RETENTION_DAYS", "30")]);
        assert_eq!(
            CoreSettings::from(&month).unwrap().bus_retention,
            Duration::from_secs(30 * 24 * 3600)
        );
        for bad in ["0", "-1", "a week", "3651"] {
            let error = CoreSettings::from(&Env::from_pairs([("JIFEN_BUS_RETENTION_DAYS", bad)]))
                .unwrap_err();
            assert_eq!(error.name, "JIFEN_BUS_RETENTION_DAYS", "{bad}");
        }
    }
}
