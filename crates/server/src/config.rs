//! Configuration: defaults embedded here, overridden by a TOML file (`--config`), then by
//! `M365BACKUP_*` environment variables, then by command-line flags. Every option is listed in
//! README.md ("Configuration").

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use conflate::Merge;
use m365backup_api::ApiSettings;
use m365backup_core::auth::AuthSettings;
use m365backup_core::signin_guard::GuardPolicy;
use m365backup_core::Secret;
use serde::Deserialize;

use crate::options_doc;

/// Options every subcommand needs to find the server's state. Each field is declared once: its
/// flag and environment variable (clap), its key in the TOML file (serde: the field name; a
/// `#[serde(skip)]` field has none), and its row in README.md ([`reference_table`]).
#[derive(Args, Debug, Clone, Default, Deserialize, Merge)]
#[serde(default)]
#[merge(strategy = conflate::option::overwrite_none)]
pub struct StateArgs {
    /// TOML configuration file: keys are the options' names with underscores (`max_body_bytes =
    /// 2097152`); unknown keys are an error.
    #[arg(long, env = "M365BACKUP_CONFIG", global = true)]
    #[serde(skip)]
    #[merge(skip)]
    pub config: Option<PathBuf>,
    /// Directory for the database, TLS certificate and keys, created with mode 0700 [default:
    /// ./data].
    #[arg(long, env = "M365BACKUP_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// `sqlite://path` or `postgres://user[:password]@host[:port]/db` [default: SQLite file
    /// `m365backup.db` in the data dir]. PostgreSQL lets several nodes share state; migrations
    /// run at start. A secret: never logged. The flag refuses a URL with a password (it would
    /// show in `ps`): put it in the environment (M365BACKUP_DATABASE_URL) or a file
    /// (--database-url-file). Order: flag, environment, --database-url-file, config file.
    #[arg(long, global = true)]
    #[merge(skip)]
    pub database_url: Option<String>,
    /// File whose first line is the database URL (may hold a password; keep it mode 0600).
    #[arg(long, env = "M365BACKUP_DATABASE_URL_FILE", global = true)]
    pub database_url_file: Option<PathBuf>,
    /// Key that seals organization and backup-account secrets (XChaCha20-Poly1305) [default:
    /// server.key in the data dir, created (mode 0600) on first start]. Back it up with the
    /// database: without it the stored secrets cannot be opened.
    #[arg(long, env = "M365BACKUP_SERVER_KEY_FILE", global = true)]
    pub server_key_file: Option<PathBuf>,
    /// Origins besides Microsoft's clouds where organizations may sign in and read Graph,
    /// comma-separated (a list in the file): `https://host[:port]`, `http://host:*` (any port),
    /// or `*` (anything: tests only); `serve --demo` adds its simulator, for itself only: the
    /// shell commands (`probe`, `restore`, `export`, `job`…) need it given [default: none].
    #[arg(
        long,
        env = "M365BACKUP_ALLOWED_ENDPOINTS",
        value_delimiter = ',',
        global = true
    )]
    pub allowed_endpoints: Option<Vec<String>>,
}

/// Options of `m365backup serve`, declared once as [`StateArgs`] are.
#[derive(Args, Debug, Clone, Default, Deserialize, Merge)]
#[serde(default)]
#[merge(strategy = conflate::option::overwrite_none)]
pub struct ServeArgs {
    /// Address and port of the API [default: 0.0.0.0:4443].
    #[arg(long, env = "M365BACKUP_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain; with --tls-key, replaces the generated self-signed certificate
    /// (both or neither).
    #[arg(long, env = "M365BACKUP_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "M365BACKUP_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// `true`: serve plain HTTP instead of HTTPS, only behind a TLS-terminating reverse proxy
    /// [default: false].
    #[arg(long, env = "M365BACKUP_PLAIN_HTTP")]
    pub plain_http: Option<bool>,
    /// `true`: take the client address (`X-Forwarded-For`, last entry), scheme and host
    /// (`X-Forwarded-Proto`/`-Host`) from the reverse proxy, only behind one that sets them
    /// [default: false].
    #[arg(long, env = "M365BACKUP_TRUST_FORWARDED_HEADERS")]
    pub trust_forwarded_headers: Option<bool>,
    /// Largest accepted request body in bytes; larger ones get 413 [default: 1048576].
    #[arg(long, env = "M365BACKUP_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Lifetime of access tokens in seconds [default: 3600].
    #[arg(long, env = "M365BACKUP_ACCESS_TOKEN_LIFETIME_SECS")]
    pub access_token_lifetime_secs: Option<u64>,
    /// Lifetime of refresh tokens in seconds [default: 1209600, 14 days].
    #[arg(long, env = "M365BACKUP_REFRESH_TOKEN_LIFETIME_SECS")]
    pub refresh_token_lifetime_secs: Option<u64>,
    /// Failed sign-ins (per user name or client address) before lockouts start [default: 5].
    #[arg(long, env = "M365BACKUP_SIGNIN_LOCKOUT_THRESHOLD")]
    pub signin_lockout_threshold: Option<u32>,
    /// First lockout in seconds; doubles with each further failure, up to 15 minutes [default: 5].
    #[arg(long, env = "M365BACKUP_SIGNIN_LOCKOUT_SECS")]
    pub signin_lockout_secs: Option<u64>,
    /// Sign-in password hashes computed at once, each in about 19 MiB of memory; a sign-in
    /// finding them all busy gets 503 with Retry-After [default: twice the number of cores].
    #[arg(long, env = "M365BACKUP_SIGNIN_HASH_SLOTS")]
    pub signin_hash_slots: Option<usize>,
    /// `https://host[:port]` used in `_links` instead of the request's Host header.
    #[arg(long, env = "M365BACKUP_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// File holding the token a Prometheus scraper presents as `Authorization: Bearer` on
    /// /metrics (or the token itself in the environment variable M365BACKUP_METRICS_TOKEN).
    #[arg(long, env = "M365BACKUP_METRICS_TOKEN_FILE")]
    pub metrics_token_file: Option<PathBuf>,
    /// Seconds a client has to send a request's headers; also how long an idle keep-alive
    /// connection stays open [default: 30].
    #[arg(long, env = "M365BACKUP_HEADER_READ_TIMEOUT_SECS")]
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds a request (reading its body and computing the answer) may take; 408 after it
    /// [default: 300].
    #[arg(long, env = "M365BACKUP_REQUEST_TIMEOUT_SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Client connections served at once; more are closed on arrival [default: 1024].
    #[arg(long, env = "M365BACKUP_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// IANA time zone of job schedules' daily times, e.g. `Europe/Berlin` [default: the
    /// system's time zone].
    #[arg(long, env = "M365BACKUP_TIME_ZONE")]
    pub time_zone: Option<String>,
    /// Job runs at once on this node [default: 4].
    #[arg(long, env = "M365BACKUP_MAX_CONCURRENT_JOBS")]
    pub max_concurrent_jobs: Option<usize>,
    /// Days audit items are kept (removed once a minute when older); 0 keeps them forever
    /// [default: 365].
    #[arg(long, env = "M365BACKUP_AUDIT_RETENTION_DAYS")]
    pub audit_retention_days: Option<u64>,
    /// Log format on standard error, `text` or `json`; `RUST_LOG` filters (default `info`)
    /// [default: text].
    #[arg(long, env = "M365BACKUP_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Also run a simulated Microsoft 365 tenant and register it as an organization (try-out
    /// mode; see "Set up on a fresh machine").
    #[arg(long, env = "M365BACKUP_DEMO")]
    #[serde(skip)]
    #[merge(skip)]
    pub demo: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// What the TOML file gave: the same options as the flags.
#[derive(Debug, Default)]
struct FileConfig {
    state: StateArgs,
    serve: ServeArgs,
}

/// Fully resolved settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub server_key_file: PathBuf,
    /// May carry a password: a secret, never logged or shown.
    pub database_url: Option<Secret>,
    pub listen: SocketAddr,
    pub tls: TlsSource,
    pub plain_http: bool,
    /// Connection limits and timeouts of the listener.
    pub connections: ConnectionLimits,
    /// Origins besides Microsoft's clouds where organizations may sign in.
    pub allowed_endpoints: Vec<String>,
    /// Time zone of job schedules' daily times.
    pub time_zone: chrono_tz::Tz,
    /// How the job scheduler claims and watches runs.
    pub scheduler: m365backup_engine::scheduler::SchedulerConfig,
    /// How much a backup run does at once.
    pub engine: m365backup_engine::backup::EngineConfig,
    pub api: ApiSettings,
    pub auth: AuthSettings,
    /// How long audit items are kept; `None`: forever.
    pub audit_retention: Option<Duration>,
    /// How long a restore session may sit unused (no request, no work running) before it stops
    /// by itself (30 minutes; shorter in tests).
    pub restore_idle_stop: Duration,
    pub log_format: LogFormat,
    /// Password for the `admin` operator created on first start (`M365BACKUP_ADMIN_PASSWORD`);
    /// random and printed once when absent. Environment only: flags show up in `ps`.
    pub bootstrap_admin_password: Option<Secret>,
    /// `serve --demo`: embedded simulated tenant, registered as an organization.
    pub demo: bool,
}

/// How the listener protects itself from slow and idle clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time to send a request's headers, and longest idle time between keep-alive requests.
    pub header_read_timeout: Duration,
    /// Time to finish a TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Time for a whole request: its body and the handler's answer.
    pub request_timeout: Duration,
    /// Client connections served at once.
    pub max_connections: usize,
    /// TCP keepalive probes on idle sockets, so dead peers are noticed.
    pub tcp_keepalive: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(30),
            tls_handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(300),
            max_connections: 1024,
            tcp_keepalive: Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsSource {
    /// Self-signed, generated in the data dir on first start and reused.
    Generated,
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
}

pub const ADMIN_PASSWORD_ENV: &str = "M365BACKUP_ADMIN_PASSWORD";
pub const DATABASE_URL_ENV: &str = "M365BACKUP_DATABASE_URL";
pub const METRICS_TOKEN_ENV: &str = "M365BACKUP_METRICS_TOKEN";
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 4443);
pub const DEFAULT_DATA_DIR: &str = "./data";
pub const DEFAULT_AUDIT_RETENTION_DAYS: u64 = 365;

impl Settings {
    pub fn resolve(state: &StateArgs, serve: &ServeArgs) -> anyhow::Result<Self> {
        let file = match &state.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        // Flags and environment (clap) over the file.
        let file_database_url = file.state.database_url.clone();
        let mut state = state.clone();
        state.merge(file.state);
        let mut serve = serve.clone();
        serve.merge(file.serve);
        let tls = match (serve.tls_cert.clone(), serve.tls_key.clone()) {
            (Some(cert), Some(key)) => TlsSource::Files { cert, key },
            (None, None) => TlsSource::Generated,
            _ => anyhow::bail!("tls_cert and tls_key must be given together"),
        };
        let plain_http = serve.plain_http.unwrap_or(false);
        let max_body_bytes = serve.max_body_bytes.unwrap_or(1024 * 1024);
        anyhow::ensure!(
            max_body_bytes >= 1024,
            "max_body_bytes must be at least 1024"
        );
        let defaults = AuthSettings::default();
        let secs = |value: Option<u64>, default: Duration| {
            value.map(Duration::from_secs).unwrap_or(default)
        };
        let auth = AuthSettings {
            access_token_lifetime: secs(
                serve.access_token_lifetime_secs,
                defaults.access_token_lifetime,
            ),
            refresh_token_lifetime: secs(
                serve.refresh_token_lifetime_secs,
                defaults.refresh_token_lifetime,
            ),
            guard: GuardPolicy {
                threshold: serve
                    .signin_lockout_threshold
                    .unwrap_or(defaults.guard.threshold)
                    .max(1),
                base_delay: secs(serve.signin_lockout_secs, defaults.guard.base_delay),
                ..defaults.guard
            },
            hash_slots: serve.signin_hash_slots.unwrap_or(defaults.hash_slots),
        };
        anyhow::ensure!(auth.hash_slots >= 1, "signin_hash_slots must be at least 1");
        anyhow::ensure!(
            !auth.access_token_lifetime.is_zero(),
            "access_token_lifetime_secs must be positive"
        );
        anyhow::ensure!(
            auth.refresh_token_lifetime >= auth.access_token_lifetime,
            "refresh_token_lifetime_secs must not be shorter than access_token_lifetime_secs"
        );
        let data_dir = state
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = database_url(&state, file_database_url)?;
        let defaults = ConnectionLimits::default();
        let connections = ConnectionLimits {
            header_read_timeout: secs(serve.header_read_timeout_secs, defaults.header_read_timeout),
            request_timeout: secs(serve.request_timeout_secs, defaults.request_timeout),
            max_connections: serve.max_connections.unwrap_or(defaults.max_connections),
            ..defaults
        };
        anyhow::ensure!(
            !connections.header_read_timeout.is_zero() && !connections.request_timeout.is_zero(),
            "header_read_timeout_secs and request_timeout_secs must be positive"
        );
        anyhow::ensure!(
            connections.max_connections >= 1,
            "max_connections must be at least 1"
        );
        let allowed_endpoints = state.allowed_endpoints.clone().unwrap_or_default();
        m365backup_core::endpoint_policy::EndpointPolicy::with_allowed(&allowed_endpoints)
            .map_err(|e| anyhow::anyhow!("allowed_endpoints: {e}"))?;
        let public_url = serve
            .public_url
            .clone()
            .map(|u| parse_public_url(&u))
            .transpose()?;
        let metrics_token = match serve.metrics_token_file.clone() {
            Some(path) => Some(read_secret_file(&path, "metrics token")?),
            None => std::env::var(METRICS_TOKEN_ENV)
                .ok()
                .filter(|t| !t.is_empty())
                .map(Secret::new),
        };
        let time_zone = match serve.time_zone.clone() {
            Some(name) => name
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("time_zone: '{name}' is not an IANA time zone"))?,
            None => system_time_zone(),
        };
        let request_timeout = connections.request_timeout;
        let audit_retention = match serve
            .audit_retention_days
            .unwrap_or(DEFAULT_AUDIT_RETENTION_DAYS)
        {
            0 => None,
            days => Some(Duration::from_secs(days.saturating_mul(24 * 60 * 60))),
        };
        Ok(Settings {
            server_key_file: state
                .server_key_file
                .clone()
                .unwrap_or_else(|| data_dir.join(crate::server_key::DEFAULT_KEY_FILE)),
            data_dir,
            database_url,
            connections,
            allowed_endpoints,
            time_zone,
            scheduler: m365backup_engine::scheduler::SchedulerConfig {
                max_concurrent_runs: serve.max_concurrent_jobs.unwrap_or(4).max(1),
                ..Default::default()
            },
            engine: Default::default(),
            listen: serve.listen.unwrap_or(DEFAULT_LISTEN),
            tls,
            plain_http,
            api: ApiSettings {
                max_body_bytes,
                trust_forwarded_headers: serve.trust_forwarded_headers.unwrap_or(false),
                scheme: if plain_http { "http" } else { "https" },
                public_url,
                metrics_token,
                request_timeout,
            },
            auth,
            audit_retention,
            restore_idle_stop: m365backup_core::restore::service::IDLE_STOP,
            log_format: serve.log_format.unwrap_or_default(),
            demo: serve.demo,
            bootstrap_admin_password: std::env::var(ADMIN_PASSWORD_ENV)
                .ok()
                .filter(|p| !p.is_empty())
                .map(Secret::new),
        })
    }

    /// Settings for a test or an embedded server: defaults, with the given data dir (fails as
    /// [`Settings::resolve`] does, e.g. on an unreadable config file there).
    pub fn for_data_dir(data_dir: &Path) -> anyhow::Result<Self> {
        let state = StateArgs {
            data_dir: Some(data_dir.to_owned()),
            ..StateArgs::default()
        };
        Self::resolve(&state, &ServeArgs::default())
    }
}

/// The database URL: the flag (never with a password: flags show in `ps`), else the environment,
/// else a file named by flag, environment or config, else the config file's value.
fn database_url(state: &StateArgs, from_config: Option<String>) -> anyhow::Result<Option<Secret>> {
    if let Some(url) = &state.database_url {
        anyhow::ensure!(
            m365backup_store::redact_url(url) == *url,
            "--database-url must not carry a password (other users can read command lines): \
             set {DATABASE_URL_ENV} or use --database-url-file"
        );
        return Ok(Some(Secret::new(url.clone())));
    }
    if let Some(url) = std::env::var(DATABASE_URL_ENV)
        .ok()
        .filter(|u| !u.is_empty())
    {
        return Ok(Some(Secret::new(url)));
    }
    if let Some(path) = state.database_url_file.clone() {
        return Ok(Some(read_secret_file(&path, "database URL")?));
    }
    Ok(from_config.map(Secret::new))
}

/// The system's time zone, or UTC when it cannot be told.
fn system_time_zone() -> chrono_tz::Tz {
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|name| name.parse().ok())
        .unwrap_or(chrono_tz::Tz::UTC)
}

/// The first line of a file that holds a secret.
fn read_secret_file(path: &Path, what: &str) -> anyhow::Result<Secret> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("reading the {what} from {}", path.display()))?,
    );
    let line = text.lines().next().unwrap_or_default().trim();
    anyhow::ensure!(!line.is_empty(), "{} holds no {what}", path.display());
    Ok(Secret::new(line))
}

/// `scheme://host[:port]` with nothing after it.
fn parse_public_url(raw: &str) -> anyhow::Result<String> {
    let trimmed = raw.trim().trim_end_matches('/');
    let (scheme, authority) = trimmed
        .split_once("://")
        .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
        .ok_or_else(|| anyhow::anyhow!("public_url must start with https:// or http://"))?;
    anyhow::ensure!(
        m365backup_api::client::is_valid_authority(authority),
        "public_url must be scheme://host[:port] with no path"
    );
    Ok(format!("{scheme}://{authority}"))
}

fn load_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    parse_file(&text).with_context(|| format!("parsing config file {}", path.display()))
}

/// The TOML file's options: every key must be one of [`file_keys`].
fn parse_file(text: &str) -> anyhow::Result<FileConfig> {
    let table: toml::Table = toml::from_str(text)?;
    let known = file_keys();
    if let Some(unknown) = table.keys().find(|k| !known.contains(&k.as_str())) {
        anyhow::bail!(
            "unknown option '{unknown}'; the file's options are: {}",
            known.join(", ")
        );
    }
    let value = toml::Value::Table(table);
    Ok(FileConfig {
        state: value.clone().try_into()?,
        serve: value.try_into()?,
    })
}

/// Every key the TOML file may hold: the serde fields of [`StateArgs`] and [`ServeArgs`].
pub fn file_keys() -> Vec<&'static str> {
    let mut keys = options_doc::serde_fields::<StateArgs>().to_vec();
    keys.extend_from_slice(options_doc::serde_fields::<ServeArgs>());
    keys
}

/// The options table of README.md ("Configuration"), generated from the definitions: flag,
/// environment variable, file key and the flag's help text.
pub fn reference_table() -> String {
    use clap::Args as _;
    let keys = file_keys();
    let command =
        ServeArgs::augment_args(StateArgs::augment_args(clap::Command::new("m365backup")));
    let mut table =
        String::from("| Flag | Environment | File key | Meaning |\n|---|---|---|---|\n");
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        let id = arg.get_id().as_str();
        let env = arg
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_else(|| "–".into());
        let key = if keys.contains(&id) {
            format!("`{id}`")
        } else {
            "–".into()
        };
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        let help = help
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace('|', "\\|");
        table.push_str(&format!("| `--{long}` | {env} | {key} | {help} |\n"));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_flag_over_file_over_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nmax_body_bytes = 2048\ndata_dir = \"/srv/x\"\n",
        )
        .unwrap();
        let state = StateArgs {
            config: Some(file),
            ..Default::default()
        };
        let serve = ServeArgs {
            max_body_bytes: Some(4096),
            ..Default::default()
        };
        let s = Settings::resolve(&state, &serve).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(s.api.max_body_bytes, 4096);
        assert_eq!(s.data_dir, PathBuf::from("/srv/x"));
        assert_eq!(s.tls, TlsSource::Generated);
        assert_eq!(s.auth.access_token_lifetime, Duration::from_secs(3600));
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        let state = StateArgs {
            config: Some(file),
            ..Default::default()
        };
        let err = Settings::resolve(&state, &ServeArgs::default()).unwrap_err();
        assert!(format!("{err:#}").contains("lisen"), "{err:#}");
    }

    #[test]
    fn database_url_with_password_is_refused_as_a_flag() {
        let state = StateArgs {
            database_url: Some("postgres://u:secret@h/db".into()),
            ..Default::default()
        };
        let err = Settings::resolve(&state, &ServeArgs::default()).unwrap_err();
        assert!(format!("{err:#}").contains("must not carry a password"));
        // A password in the query is a password too (libpq takes `password=` there).
        for url in [
            "postgres://u@h/db?password=secret",
            "postgres://u@h/db?sslmode=require&PASSWORD=secret",
        ] {
            let state = StateArgs {
                database_url: Some(url.into()),
                ..Default::default()
            };
            let err = Settings::resolve(&state, &ServeArgs::default()).unwrap_err();
            assert!(
                format!("{err:#}").contains("must not carry a password"),
                "{url}"
            );
            assert!(!format!("{err:#}").contains("secret"), "{err:#}");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db-url");
        std::fs::write(&file, "postgres://u:secret@h/db\n").unwrap();
        let state = StateArgs {
            database_url_file: Some(file),
            ..Default::default()
        };
        let s = Settings::resolve(&state, &ServeArgs::default()).unwrap();
        assert_eq!(
            s.database_url.as_ref().map(Secret::expose),
            Some("postgres://u:secret@h/db")
        );
        assert!(!format!("{s:?}").contains("secret@"), "redacted in Debug");
    }

    #[test]
    fn public_url_and_endpoints_are_checked() {
        let serve = ServeArgs {
            public_url: Some("https://backup.example.com:4443/".into()),
            ..Default::default()
        };
        let state = StateArgs {
            allowed_endpoints: Some(vec!["http://127.0.0.1:*".into()]),
            ..Default::default()
        };
        let s = Settings::resolve(&state, &serve).unwrap();
        assert_eq!(
            s.api.public_url.as_deref(),
            Some("https://backup.example.com:4443")
        );
        for bad in ["ftp://x", "https://x/path", "https://a b"] {
            let serve = ServeArgs {
                public_url: Some(bad.into()),
                ..Default::default()
            };
            assert!(
                Settings::resolve(&StateArgs::default(), &serve).is_err(),
                "{bad}"
            );
        }
        let state = StateArgs {
            allowed_endpoints: Some(vec!["127.0.0.1".into()]),
            ..Default::default()
        };
        assert!(Settings::resolve(&state, &ServeArgs::default()).is_err());
    }

    /// The README's options table is the one [`reference_table`] makes from the definitions;
    /// `UPDATE_README=1` rewrites it.
    #[test]
    fn readme_lists_every_option_as_defined() {
        const BEGIN: &str = "<!-- options:begin";
        const END: &str = "<!-- options:end -->";
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let begin = readme
            .find(BEGIN)
            .expect("README.md has the options:begin marker");
        let body = begin + readme[begin..].find('\n').unwrap() + 1;
        let end = body
            + readme[body..]
                .find(END)
                .expect("README.md has the options:end marker");
        let table = reference_table();
        if readme[body..end] == table {
            return;
        }
        if std::env::var_os("UPDATE_README").is_some() {
            let updated = format!("{}{table}{}", &readme[..body], &readme[end..]);
            std::fs::write(&path, updated).unwrap();
            return;
        }
        panic!(
            "README.md's options table is not the one the definitions in config.rs make; \
             `UPDATE_README=1 cargo test -p m365backup --lib config::` rewrites it as:\n{table}"
        );
    }

    #[test]
    fn every_option_reaches_flag_environment_and_file() {
        let keys = file_keys();
        for key in [
            "data_dir",
            "listen",
            "max_body_bytes",
            "log_format",
            "database_url",
        ] {
            assert!(keys.contains(&key), "{key}");
        }
        // Not in the file: the file's own name, and the try-out switch.
        assert!(!keys.contains(&"config") && !keys.contains(&"demo"));
        let table = reference_table();
        for row in [
            "| `--listen` | `M365BACKUP_LISTEN` | `listen` |",
            "| `--config` | `M365BACKUP_CONFIG` | – |",
            "| `--database-url` | – | `database_url` |",
        ] {
            assert!(table.contains(row), "{row} in\n{table}");
        }
        // Every file key parses from a file and lands in the settings.
        let file = parse_file(
            "time_zone = \"Europe/Berlin\"\nmax_concurrent_jobs = 7\nallowed_endpoints = [\"http://127.0.0.1:*\"]\n",
        )
        .unwrap();
        assert_eq!(file.serve.max_concurrent_jobs, Some(7));
        assert_eq!(file.serve.time_zone.as_deref(), Some("Europe/Berlin"));
        assert!(
            parse_file("demo = true\n").is_err(),
            "demo is not a file key"
        );
    }

    #[test]
    fn cert_needs_key() {
        let serve = ServeArgs {
            tls_cert: Some("c.pem".into()),
            ..Default::default()
        };
        assert!(Settings::resolve(&StateArgs::default(), &serve).is_err());
    }
}
