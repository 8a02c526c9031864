//! Layered configuration: built-in defaults, then an optional TOML file,
//! then `QS_*` environment variables (`QS_EVENT_LOG=kafka`,
//! `QS_KAFKA_BOOTSTRAP=…`). Secrets are [`Secret`]s: they never print.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::eventlog::kafka::KafkaConfig;

/// A value that must never reach a log line or an error message.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The only way to the value: greppable, so every use is deliberate.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Logins a minute per account: a person mistyping is never stopped, a
/// password-guessing script gets 10 tries a minute.
pub const DEFAULT_LOGIN_PER_MIN: u32 = 10;
/// Logins a minute per client address: a NAT'd office or a test suite
/// logging in many accounts is fine, a credential-stuffing run is slowed.
pub const DEFAULT_LOGIN_IP_PER_MIN: u32 = 600;
/// Commands a second per subject: far above a person or an app, below
/// what one stolen token could flood the log with.
pub const DEFAULT_COMMANDS_PER_SEC: u32 = 1_000;

/// Aggregates a command processor keeps decoded in memory by default.
pub const DEFAULT_PROCESSOR_CACHE_AGGREGATES: usize = 10_000;

/// Which event log backs the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventLogBackend {
    /// One process, data in `data_dir` (the default: `quickstore dev`).
    Embedded,
    /// Apache Kafka at `kafka_bootstrap`.
    Kafka,
}

/// Which read store backs the projections and the query API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadStoreBackend {
    /// One process, a redb file in `data_dir` (the default: `quickstore dev`).
    Embedded,
    /// ScyllaDB or Cassandra at `cql_contact_points`.
    Cql,
}

/// Every setting, flat so each maps to one `QS_<NAME>` variable.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// `QS_EVENT_LOG`: `embedded` or `kafka`.
    pub event_log: EventLogBackend,
    /// `QS_DATA_DIR`: the embedded log's and registry's directory.
    pub data_dir: PathBuf,
    /// `QS_KAFKA_BOOTSTRAP`: `host:port[,host:port]`.
    pub kafka_bootstrap: String,
    /// `QS_KAFKA_SECURITY_PROTOCOL`: `plaintext`, `ssl`, `sasl_plaintext`, `sasl_ssl`.
    pub kafka_security_protocol: String,
    /// `QS_KAFKA_SASL_MECHANISM`, e.g. `SCRAM-SHA-512`.
    pub kafka_sasl_mechanism: Option<String>,
    pub kafka_sasl_username: Option<String>,
    /// `QS_KAFKA_SASL_PASSWORD` (secret).
    pub kafka_sasl_password: Option<Secret>,
    /// `QS_KAFKA_SSL_CA_LOCATION`: PEM file of the CA(s) of the brokers'
    /// certificates (`ssl` / `sasl_ssl`); unset = the system's roots.
    pub kafka_ssl_ca_location: Option<String>,
    /// `QS_KAFKA_SSL_CERTIFICATE_LOCATION`: client certificate (PEM) for
    /// brokers that authenticate clients by certificate (mTLS).
    pub kafka_ssl_certificate_location: Option<String>,
    /// `QS_KAFKA_SSL_KEY_LOCATION`: the client certificate's private key (PEM).
    pub kafka_ssl_key_location: Option<String>,
    /// `QS_KAFKA_SSL_KEY_PASSWORD` (secret): the key's passphrase, if any.
    pub kafka_ssl_key_password: Option<Secret>,
    /// `QS_KAFKA_SSL_VERIFY`: check the brokers' certificates and host
    /// names (default true; false only for a throwaway test broker).
    pub kafka_ssl_verify: bool,
    /// `QS_KAFKA_DEBUG`: librdkafka debug contexts for diagnosing a client
    /// (e.g. `cgrp,eos` or `protocol`), logged at DEBUG under the
    /// `librdkafka` target. Unset in normal operation: it is verbose.
    pub kafka_debug: Option<String>,
    /// `QS_SCHEMA_REGISTRY_URL`: a Confluent-compatible registry; unset =
    /// the embedded registry (persisted in `data_dir`).
    pub schema_registry_url: Option<String>,
    /// `QS_TOPIC_PREFIX`: prepended to every topic and group name.
    pub topic_prefix: String,
    /// `QS_PARTITIONS`: partitions of every co-partitioned topic.
    pub partitions: i32,
    /// `QS_REPLICATION_FACTOR`: 1 on a single broker, 3 in production.
    pub replication_factor: i16,
    /// `QS_MIN_INSYNC_REPLICAS`: `min.insync.replicas` of every topic
    /// (1 locally, 2 in production with 3 replicas): with `acks=all` a write
    /// is refused rather than kept on fewer copies.
    pub min_insync_replicas: i16,
    /// `QS_COMMAND_API_LISTEN`: where the command API listens.
    pub command_api_listen: String,
    /// `QS_PAYMENT_WEBHOOK_SECRET` (secret): the gateway's webhook signing
    /// secret. Unset = a random one per start (webhooks then only verify
    /// when signed by this process, e.g. the simulated gateway in tests).
    pub payment_webhook_secret: Option<Secret>,
    /// `QS_AUTH_SIGNING_KEY` (secret): the ES256 private key (PEM) access
    /// tokens are signed with. Unset = `<data_dir>/auth/signing-key.pem`,
    /// created on first start.
    pub auth_signing_key: Option<Secret>,
    /// `QS_AUTH_ISSUER`: the `iss` of access tokens.
    pub auth_issuer: String,
    /// `QS_AUTH_AUDIENCE`: the `aud` of access tokens.
    pub auth_audience: String,
    /// `QS_PAYMENT_AUTHORIZATION_TIMEOUT_MS`: how long the saga waits for
    /// the gateway's answer.
    pub payment_authorization_timeout_ms: i64,
    /// `QS_COURIER_ASSIGNMENT_TIMEOUT_MS`: how long the saga waits for a
    /// courier.
    pub courier_assignment_timeout_ms: i64,
    /// `QS_READ_STORE`: `embedded` or `cql`.
    pub read_store: ReadStoreBackend,
    /// `QS_CQL_CONTACT_POINTS`: `host:port[,host:port]` of ScyllaDB/Cassandra nodes.
    pub cql_contact_points: String,
    /// `QS_CQL_KEYSPACE`: the keyspace of every read-model table.
    pub cql_keyspace: String,
    /// `QS_CQL_REPLICATION_FACTOR`: used when QuickStore creates the keyspace.
    pub cql_replication_factor: u32,
    /// `QS_CQL_CONSISTENCY`: `one`, `local_quorum` or `quorum`.
    pub cql_consistency: String,
    /// `QS_CQL_USERNAME`, for PasswordAuthenticator.
    pub cql_username: Option<String>,
    /// `QS_CQL_PASSWORD` (secret).
    pub cql_password: Option<Secret>,
    /// `QS_CQL_TLS`: client-to-node TLS (default false).
    pub cql_tls: bool,
    /// `QS_CQL_TLS_CA_FILE`: PEM of the CA that signed the nodes'
    /// certificates (required when verifying).
    pub cql_tls_ca_file: Option<PathBuf>,
    /// `QS_CQL_TLS_VERIFY`: check the node's certificate (default true).
    pub cql_tls_verify: bool,
    /// `QS_CQL_TLS_CERT_FILE` / `QS_CQL_TLS_KEY_FILE`: a client certificate
    /// and key (PEM) for nodes with `require_client_auth`.
    pub cql_tls_cert_file: Option<PathBuf>,
    pub cql_tls_key_file: Option<PathBuf>,
    /// `QS_QUERY_API_LISTEN`: where the query API listens.
    pub query_api_listen: String,
    /// `QS_READ_YOUR_WRITES_TIMEOUT_MS`: how long a query carrying a
    /// position token waits for the read model to pass it.
    pub read_your_writes_timeout_ms: u64,
    /// `QS_OTLP_ENDPOINT`: where spans go (OTLP over HTTP/protobuf, e.g.
    /// `http://127.0.0.1:4318`); unset = `OTEL_EXPORTER_OTLP_ENDPOINT`,
    /// and neither = no export (docs/observability.md).
    pub otlp_endpoint: Option<String>,
    /// `QS_SERVICE_NAME`: the `service.name` of exported spans; unset =
    /// `OTEL_SERVICE_NAME`, else `quickstore`.
    pub service_name: Option<String>,
    /// `QS_OPS_LISTEN`: `host:port` of the ops listener (`/metrics`,
    /// `/healthz`, `/readyz`) of processes without an HTTP API (`quickstore
    /// projections run`); unset = none.
    pub ops_listen: Option<String>,
    /// `QS_RATE_LIMIT_LOGIN_PER_MIN`: logins a minute per account (e-mail),
    /// a burst of as many; 0 = off (docs/security.md).
    pub rate_limit_login_per_min: u32,
    /// `QS_RATE_LIMIT_LOGIN_IP_PER_MIN`: logins a minute per client
    /// address (many accounts from one place); 0 = off.
    pub rate_limit_login_ip_per_min: u32,
    /// `QS_RATE_LIMIT_COMMANDS_PER_SEC`: state-changing requests a second
    /// per token subject, a burst of as many; 0 = off. High by default so
    /// benchmarks and seeding scripts are not throttled.
    pub rate_limit_commands_per_sec: u32,
    /// `QS_PROCESSOR_STATE_DIR`: where command processors keep their local
    /// aggregate store (scratch, rebuilt from the log on every assignment;
    /// ADR 0020). Unset = `<data_dir>/processor-state`.
    pub processor_state_dir: Option<PathBuf>,
    /// `QS_PROCESSOR_CACHE_AGGREGATES`: aggregates each command processor
    /// keeps decoded in memory (all its partitions together); the rest are
    /// read from its local store on demand. Memory per processor is flat in
    /// the number of aggregates: about this many times an aggregate's size.
    pub processor_cache_aggregates: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            event_log: EventLogBackend::Embedded,
            data_dir: PathBuf::from(".quickstore"),
            kafka_bootstrap: "127.0.0.1:9092".to_owned(),
            kafka_security_protocol: "plaintext".to_owned(),
            kafka_sasl_mechanism: None,
            kafka_sasl_username: None,
            kafka_sasl_password: None,
            kafka_ssl_ca_location: None,
            kafka_ssl_certificate_location: None,
            kafka_ssl_key_location: None,
            kafka_ssl_key_password: None,
            kafka_ssl_verify: true,
            kafka_debug: None,
            schema_registry_url: None,
            topic_prefix: String::new(),
            partitions: 6,
            replication_factor: 1,
            min_insync_replicas: 1,
            command_api_listen: "127.0.0.1:8080".to_owned(),
            payment_webhook_secret: None,
            auth_signing_key: None,
            auth_issuer: "quickstore".to_owned(),
            auth_audience: "quickstore".to_owned(),
            payment_authorization_timeout_ms: 30_000,
            courier_assignment_timeout_ms: 15 * 60_000,
            read_store: ReadStoreBackend::Embedded,
            cql_contact_points: "127.0.0.1:9042".to_owned(),
            cql_keyspace: "quickstore".to_owned(),
            cql_replication_factor: 1,
            cql_consistency: "local_quorum".to_owned(),
            cql_username: None,
            cql_password: None,
            cql_tls: false,
            cql_tls_ca_file: None,
            cql_tls_verify: true,
            cql_tls_cert_file: None,
            cql_tls_key_file: None,
            query_api_listen: "127.0.0.1:8090".to_owned(),
            read_your_writes_timeout_ms: 2_000,
            otlp_endpoint: None,
            service_name: None,
            ops_listen: None,
            rate_limit_login_per_min: DEFAULT_LOGIN_PER_MIN,
            rate_limit_login_ip_per_min: DEFAULT_LOGIN_IP_PER_MIN,
            rate_limit_commands_per_sec: DEFAULT_COMMANDS_PER_SEC,
            processor_state_dir: None,
            processor_cache_aggregates: DEFAULT_PROCESSOR_CACHE_AGGREGATES,
        }
    }
}

/// A configuration that cannot be used, with what to change.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Defaults < `file` (if given) < `QS_*` environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        let settings: Settings = figment
            .merge(Env::prefixed("QS_"))
            .extract()
            .map_err(|e| ConfigError(describe(e)))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=10_000).contains(&self.partitions) {
            return Err(ConfigError(format!(
                "QS_PARTITIONS must be between 1 and 10000, got {}",
                self.partitions
            )));
        }
        if self.replication_factor < 1 {
            return Err(ConfigError(
                "QS_REPLICATION_FACTOR must be at least 1".into(),
            ));
        }
        if self.min_insync_replicas < 1 || self.min_insync_replicas > self.replication_factor {
            return Err(ConfigError(format!(
                "QS_MIN_INSYNC_REPLICAS must be between 1 and QS_REPLICATION_FACTOR ({}), got {}",
                self.replication_factor, self.min_insync_replicas
            )));
        }
        if self.payment_authorization_timeout_ms < 1 || self.courier_assignment_timeout_ms < 1 {
            return Err(ConfigError(
                "QS_PAYMENT_AUTHORIZATION_TIMEOUT_MS and QS_COURIER_ASSIGNMENT_TIMEOUT_MS must be positive".into(),
            ));
        }
        if self.event_log == EventLogBackend::Kafka && self.kafka_bootstrap.trim().is_empty() {
            return Err(ConfigError(
                "QS_EVENT_LOG=kafka needs QS_KAFKA_BOOTSTRAP=host:port".into(),
            ));
        }
        if self.read_store == ReadStoreBackend::Cql {
            if self.cql_contact_points().is_empty() {
                return Err(ConfigError(
                    "QS_READ_STORE=cql needs QS_CQL_CONTACT_POINTS=host:port[,host:port]".into(),
                ));
            }
            self.cql_consistency()?;
        }
        if let Some(endpoint) = self.otlp_endpoint() {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(ConfigError(format!(
                    "QS_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_ENDPOINT) must be an http:// or https:// URL of an OTLP/HTTP collector, e.g. http://127.0.0.1:4318, got {endpoint:?}"
                )));
            }
        }
        if self.cql_replication_factor < 1 {
            return Err(ConfigError(
                "QS_CQL_REPLICATION_FACTOR must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Where the command processors' local aggregate stores go.
    pub fn processor_state_dir(&self) -> PathBuf {
        self.processor_state_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("processor-state"))
    }

    /// The OTLP endpoint: `QS_OTLP_ENDPOINT`, else the standard
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`; `None` = tracing export off.
    pub fn otlp_endpoint(&self) -> Option<String> {
        self.otlp_endpoint
            .clone()
            .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    /// `QS_SERVICE_NAME`, else the standard `OTEL_SERVICE_NAME`, else
    /// `quickstore`.
    pub fn service_name(&self) -> String {
        self.service_name
            .clone()
            .or_else(|| std::env::var("OTEL_SERVICE_NAME").ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "quickstore".to_owned())
    }

    /// The CQL contact points, trimmed, empty entries dropped.
    pub fn cql_contact_points(&self) -> Vec<String> {
        self.cql_contact_points
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// `QS_CQL_CONSISTENCY` parsed.
    pub fn cql_consistency(&self) -> Result<crate::readstore::Consistency, ConfigError> {
        use crate::readstore::Consistency;
        match self.cql_consistency.to_ascii_lowercase().as_str() {
            "one" => Ok(Consistency::One),
            "local_quorum" => Ok(Consistency::LocalQuorum),
            "quorum" => Ok(Consistency::Quorum),
            other => Err(ConfigError(format!(
                "QS_CQL_CONSISTENCY must be one, local_quorum or quorum, got {other:?}"
            ))),
        }
    }

    /// The CQL adapter's settings, credentials included.
    pub fn cql(&self) -> Result<crate::readstore::CqlConfig, ConfigError> {
        let mut config =
            crate::readstore::CqlConfig::new(self.cql_contact_points(), self.cql_keyspace.clone());
        config.replication_factor = self.cql_replication_factor;
        config.consistency = self.cql_consistency()?;
        if self.cql_tls {
            let cert = match (&self.cql_tls_cert_file, &self.cql_tls_key_file) {
                (Some(c), Some(k)) => Some((c.clone(), k.clone())),
                (None, None) => None,
                _ => {
                    return Err(ConfigError(
                        "set both QS_CQL_TLS_CERT_FILE and QS_CQL_TLS_KEY_FILE, or neither".into(),
                    ))
                }
            };
            if !self.cql_tls_verify {
                tracing::warn!("QS_CQL_TLS_VERIFY=false: the CQL nodes' certificates are not checked (encryption without authentication)");
            }
            let tls =
                crate::readstore::tls::client_config(&crate::readstore::tls::CqlTlsSettings {
                    ca_file: self.cql_tls_ca_file.clone(),
                    verify: self.cql_tls_verify,
                    client_cert: cert,
                })
                .map_err(ConfigError)?;
            config.tls = Some(tls);
        }
        match (&self.cql_username, &self.cql_password) {
            (Some(user), Some(password)) => {
                config.credentials = Some((user.clone(), password.clone()));
            }
            (None, None) => {}
            _ => {
                return Err(ConfigError(
                    "set both QS_CQL_USERNAME and QS_CQL_PASSWORD, or neither".into(),
                ))
            }
        }
        Ok(config)
    }

    /// The Kafka client settings, security included.
    pub fn kafka(&self) -> KafkaConfig {
        let mut config = KafkaConfig::new(self.kafka_bootstrap.clone());
        let mut set =
            |k: &str, v: &str| config.client_properties.push((k.to_owned(), v.to_owned()));
        set("security.protocol", &self.kafka_security_protocol);
        if let Some(m) = &self.kafka_sasl_mechanism {
            set("sasl.mechanism", m);
        }
        if let Some(u) = &self.kafka_sasl_username {
            set("sasl.username", u);
        }
        if let Some(p) = &self.kafka_sasl_password {
            set("sasl.password", p.expose());
        }
        if let Some(ca) = &self.kafka_ssl_ca_location {
            set("ssl.ca.location", ca);
        }
        if let Some(cert) = &self.kafka_ssl_certificate_location {
            set("ssl.certificate.location", cert);
        }
        if let Some(key) = &self.kafka_ssl_key_location {
            set("ssl.key.location", key);
        }
        if let Some(p) = &self.kafka_ssl_key_password {
            set("ssl.key.password", p.expose());
        }
        if !self.kafka_ssl_verify {
            set("enable.ssl.certificate.verification", "false");
            set("ssl.endpoint.identification.algorithm", "none");
        }
        if let Some(contexts) = self.kafka_debug.as_deref().filter(|c| !c.is_empty()) {
            set("debug", contexts);
        }
        config
    }
}

/// figment's errors name the field (`event_log`); users set variables
/// (`QS_EVENT_LOG`), so say that.
fn describe(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let variable = format!("QS_{}", e.path.join("_").to_uppercase());
            format!("{variable}: {}", e.kind)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Settings {
            kafka_sasl_password: Some(Secret::new("hunter2")),
            ..Settings::default()
        };
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{:?}", s.kafka()).contains("hunter2"));
    }

    #[test]
    fn kafka_security_settings_reach_the_client_and_never_print() {
        let s = Settings {
            kafka_security_protocol: "sasl_ssl".into(),
            kafka_sasl_mechanism: Some("SCRAM-SHA-512".into()),
            kafka_sasl_username: Some("shop".into()),
            kafka_sasl_password: Some(Secret::new("sasl-pw-3141")),
            kafka_ssl_ca_location: Some("/etc/kafka/ca.pem".into()),
            kafka_ssl_certificate_location: Some("/etc/kafka/client.pem".into()),
            kafka_ssl_key_location: Some("/etc/kafka/client.key".into()),
            kafka_ssl_key_password: Some(Secret::new("key-pw-2718")),
            kafka_ssl_verify: false,
            ..Settings::default()
        };
        let config = s.kafka();
        let get = |k: &str| {
            config
                .client_properties
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("security.protocol").as_deref(), Some("sasl_ssl"));
        assert_eq!(get("sasl.mechanism").as_deref(), Some("SCRAM-SHA-512"));
        assert_eq!(get("sasl.username").as_deref(), Some("shop"));
        assert_eq!(get("sasl.password").as_deref(), Some("sasl-pw-3141"));
        assert_eq!(get("ssl.ca.location").as_deref(), Some("/etc/kafka/ca.pem"));
        assert_eq!(
            get("ssl.certificate.location").as_deref(),
            Some("/etc/kafka/client.pem")
        );
        assert_eq!(
            get("ssl.key.location").as_deref(),
            Some("/etc/kafka/client.key")
        );
        assert_eq!(get("ssl.key.password").as_deref(), Some("key-pw-2718"));
        assert_eq!(
            get("enable.ssl.certificate.verification").as_deref(),
            Some("false")
        );
        for text in [format!("{s:?}"), format!("{config:?}")] {
            assert!(!text.contains("sasl-pw-3141"), "{text}");
            assert!(!text.contains("key-pw-2718"), "{text}");
        }
    }

    #[test]
    fn cql_credentials_and_tls_reach_the_driver_config_and_never_print() {
        let s = Settings {
            cql_username: Some("reader".into()),
            cql_password: Some(Secret::new("cql-pw-1618")),
            cql_tls: true,
            cql_tls_verify: false,
            ..Settings::default()
        };
        let Ok(config) = s.cql() else {
            unreachable!("TLS without verification needs no file");
        };
        assert_eq!(
            config
                .credentials
                .as_ref()
                .map(|(u, p)| (u.as_str(), p.expose())),
            Some(("reader", "cql-pw-1618"))
        );
        assert!(config.tls.is_some());
        assert!(!format!("{config:?}").contains("cql-pw-1618"));
        assert!(!format!("{s:?}").contains("cql-pw-1618"));
        // Verifying without a CA names the setting to add.
        let err = Settings {
            cql_tls: true,
            ..Settings::default()
        }
        .cql()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("QS_CQL_TLS_CA_FILE"), "{err}");
        // Half a client certificate is refused.
        let err = Settings {
            cql_tls: true,
            cql_tls_verify: false,
            cql_tls_cert_file: Some("/x.pem".into()),
            ..Settings::default()
        }
        .cql()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("QS_CQL_TLS_KEY_FILE"), "{err}");
    }

    #[test]
    fn defaults_are_valid() {
        assert!(Settings::default().validate().is_ok());
    }

    #[test]
    fn rejects_bad_partitions_with_the_variable_to_fix() {
        let s = Settings {
            partitions: 0,
            ..Settings::default()
        };
        let err = s
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("QS_PARTITIONS"), "{err}");
    }
}
