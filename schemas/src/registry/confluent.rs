//! [`ConfluentRegistry`]: a thin client of the Confluent Schema Registry REST
//! API (<https://docs.confluent.io/platform/current/schema-registry/develop/api.html>).
//!
//! Strict to the documented API: content type
//! `application/vnd.schemaregistry.v1+json`, Confluent's paths, and only
//! Confluent's documented error codes map to typed errors (40401 subject not
//! found, 40402 version not found, 40403 schema not found, 409 incompatible,
//! 42201 invalid schema, 42203 invalid compatibility level); anything else is
//! [`RegistryError::Server`].

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use super::{CompatibilityLevel, RegistryError, SchemaRegistry, SubjectVersion};

/// The Confluent Schema Registry media type.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// A secret string (a password): never printed by `Debug`, no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// HTTP basic-auth credentials (Confluent Cloud: API key and secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// User name / API key.
    pub username: String,
    /// Password / API secret.
    pub password: Secret,
}

/// Where and how to reach the registry.
#[derive(Debug, Clone)]
pub struct ConfluentRegistryConfig {
    /// Base URL, e.g. `http://127.0.0.1:8081` (a path prefix is kept, e.g. `http://host/apis/ccompat/v7`).
    pub url: String,
    /// Optional basic-auth credentials.
    pub basic_auth: Option<BasicAuth>,
    /// Timeout of one request (connect included).
    pub timeout: Duration,
}

impl ConfluentRegistryConfig {
    /// A config for `url` with no credentials and a 10 s timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            basic_auth: None,
            timeout: Duration::from_secs(10),
        }
    }

    /// Adds basic-auth credentials.
    pub fn with_basic_auth(mut self, username: impl Into<String>, password: Secret) -> Self {
        self.basic_auth = Some(BasicAuth {
            username: username.into(),
            password,
        });
        self
    }
}

/// HTTP client of the Confluent Schema Registry.
#[derive(Debug, Clone)]
pub struct ConfluentRegistry {
    client: reqwest::Client,
    base: Url,
    auth: Option<BasicAuth>,
}

/// What a request was about, to build typed errors.
#[derive(Default)]
struct Target<'a> {
    subject: Option<&'a str>,
    version: Option<u32>,
    id: Option<u32>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error_code: u32,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct IdResponse {
    id: u32,
}

#[derive(Deserialize)]
struct SchemaResponse {
    schema: String,
}

#[derive(Deserialize)]
struct VersionResponse {
    subject: String,
    version: u32,
    id: u32,
    schema: String,
}

impl From<VersionResponse> for SubjectVersion {
    fn from(r: VersionResponse) -> Self {
        SubjectVersion {
            subject: r.subject,
            version: r.version,
            id: r.id,
            schema: r.schema,
        }
    }
}

#[derive(Deserialize)]
struct ConfigResponse {
    #[serde(rename = "compatibilityLevel", alias = "compatibility")]
    compatibility_level: String,
}

#[derive(Deserialize)]
struct CompatibilityResponse {
    is_compatible: bool,
}

impl ConfluentRegistry {
    /// A client for the registry at `config.url`.
    pub fn new(config: ConfluentRegistryConfig) -> Result<Self, RegistryError> {
        let base = Url::parse(&config.url).map_err(|e| {
            RegistryError::Transport(format!("invalid registry URL {:?}: {e}", config.url))
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(RegistryError::Transport(format!(
                "registry URL must be http(s)://host[:port][/path], got {:?}",
                config.url
            )));
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| RegistryError::Transport(e.to_string()))?;
        Ok(Self {
            client,
            base,
            auth: config.basic_auth,
        })
    }

    /// The base URL.
    pub fn url(&self) -> &Url {
        &self.base
    }

    fn endpoint(&self, segments: &[&str]) -> Result<Url, RegistryError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| {
                RegistryError::Transport(format!("registry URL {} cannot be a base", self.base))
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
        target: Target<'_>,
    ) -> Result<T, RegistryError> {
        let mut request = self
            .client
            .request(method, url.clone())
            .header(reqwest::header::ACCEPT, CONTENT_TYPE);
        if let Some(auth) = &self.auth {
            request = request.basic_auth(&auth.username, Some(auth.password.expose()));
        }
        if let Some(body) = body {
            let bytes =
                serde_json::to_vec(&body).map_err(|e| RegistryError::Protocol(e.to_string()))?;
            request = request
                .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
                .body(bytes);
        }
        let response = request
            .send()
            .await
            .map_err(|e| RegistryError::Transport(format!("{url}: {e}")))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| RegistryError::Transport(format!("{url}: {e}")))?;
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| {
                RegistryError::Protocol(format!(
                    "{url}: {e}: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(512)])
                ))
            })
        } else {
            Err(error_from(status.as_u16(), &bytes, &target))
        }
    }
}

fn error_from(status: u16, body: &[u8], target: &Target<'_>) -> RegistryError {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
    let (error_code, message) = match parsed {
        Some(b) => (b.error_code, b.message),
        None => (
            0,
            String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
        ),
    };
    let subject = || target.subject.unwrap_or_default().to_owned();
    match (status, error_code) {
        (_, 40401) => RegistryError::SubjectNotFound(subject()),
        (_, 40402) => RegistryError::VersionNotFound {
            subject: subject(),
            version: target.version.unwrap_or_default(),
        },
        (_, 40403) => RegistryError::SchemaNotFound(target.id.unwrap_or_default()),
        (409, _) | (_, 409) => RegistryError::Incompatible {
            subject: subject(),
            reason: message,
        },
        (_, 42201) => RegistryError::InvalidSchema(message),
        (_, 42203) => RegistryError::InvalidCompatibilityLevel(message),
        _ => RegistryError::Server {
            status,
            error_code,
            message,
        },
    }
}

#[async_trait]
impl SchemaRegistry for ConfluentRegistry {
    async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let url = self.endpoint(&["subjects", subject, "versions"])?;
        let target = Target {
            subject: Some(subject),
            ..Target::default()
        };
        let response: IdResponse = self
            .call(Method::POST, url, Some(json!({ "schema": schema })), target)
            .await?;
        Ok(response.id)
    }

    async fn schema_by_id(&self, id: u32) -> Result<String, RegistryError> {
        let url = self.endpoint(&["schemas", "ids", &id.to_string()])?;
        let target = Target {
            id: Some(id),
            ..Target::default()
        };
        let response: SchemaResponse = self.call(Method::GET, url, None, target).await?;
        Ok(response.schema)
    }

    async fn latest(&self, subject: &str) -> Result<SubjectVersion, RegistryError> {
        let url = self.endpoint(&["subjects", subject, "versions", "latest"])?;
        let target = Target {
            subject: Some(subject),
            ..Target::default()
        };
        let r: VersionResponse = self.call(Method::GET, url, None, target).await?;
        Ok(r.into())
    }

    async fn versions(&self, subject: &str) -> Result<Vec<u32>, RegistryError> {
        let url = self.endpoint(&["subjects", subject, "versions"])?;
        let target = Target {
            subject: Some(subject),
            ..Target::default()
        };
        self.call(Method::GET, url, None, target).await
    }

    async fn version(&self, subject: &str, version: u32) -> Result<SubjectVersion, RegistryError> {
        let url = self.endpoint(&["subjects", subject, "versions", &version.to_string()])?;
        let target = Target {
            subject: Some(subject),
            version: Some(version),
            ..Target::default()
        };
        let r: VersionResponse = self.call(Method::GET, url, None, target).await?;
        Ok(r.into())
    }

    async fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        let url = self.endpoint(&["subjects"])?;
        let mut subjects: Vec<String> =
            self.call(Method::GET, url, None, Target::default()).await?;
        subjects.sort();
        Ok(subjects)
    }

    async fn set_compatibility(
        &self,
        subject: Option<&str>,
        level: CompatibilityLevel,
    ) -> Result<(), RegistryError> {
        let url = match subject {
            Some(s) => self.endpoint(&["config", s])?,
            None => self.endpoint(&["config"])?,
        };
        let target = Target {
            subject,
            ..Target::default()
        };
        let _: serde_json::Value = self
            .call(
                Method::PUT,
                url,
                Some(json!({ "compatibility": level.as_str() })),
                target,
            )
            .await?;
        Ok(())
    }

    async fn compatibility(
        &self,
        subject: Option<&str>,
    ) -> Result<CompatibilityLevel, RegistryError> {
        let url = match subject {
            Some(s) => {
                let mut url = self.endpoint(&["config", s])?;
                url.query_pairs_mut().append_pair("defaultToGlobal", "true");
                url
            }
            None => self.endpoint(&["config"])?,
        };
        let target = Target {
            subject,
            ..Target::default()
        };
        let r: ConfigResponse = self.call(Method::GET, url, None, target).await?;
        r.compatibility_level.parse()
    }

    async fn check_compatibility(
        &self,
        subject: &str,
        schema: &str,
    ) -> Result<bool, RegistryError> {
        let url = self.endpoint(&["compatibility", "subjects", subject, "versions", "latest"])?;
        let target = Target {
            subject: Some(subject),
            ..Target::default()
        };
        let result: Result<CompatibilityResponse, _> = self
            .call(Method::POST, url, Some(json!({ "schema": schema })), target)
            .await;
        match result {
            Ok(r) => Ok(r.is_compatible),
            // Nothing registered yet: nothing to be incompatible with.
            Err(RegistryError::SubjectNotFound(_) | RegistryError::VersionNotFound { .. }) => {
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let config = ConfluentRegistryConfig::new("http://127.0.0.1:1")
            .with_basic_auth("key", Secret::new("hunter2"));
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("Secret(***)"));
        assert_eq!(
            config
                .basic_auth
                .map(|a| a.password.expose().to_owned())
                .as_deref(),
            Some("hunter2")
        );
    }

    #[test]
    fn endpoints_keep_a_base_path_and_encode_subjects() {
        let registry =
            ConfluentRegistry::new(ConfluentRegistryConfig::new("http://h:1/apis/ccompat/v7/"))
                .unwrap_or_else(|e| panic!("{e}"));
        let url = registry
            .endpoint(&["subjects", "a b/c", "versions"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            url.as_str(),
            "http://h:1/apis/ccompat/v7/subjects/a%20b%2Fc/versions"
        );
        assert!(ConfluentRegistry::new(ConfluentRegistryConfig::new("mailto:x@y")).is_err());
        assert!(ConfluentRegistry::new(ConfluentRegistryConfig::new("not a url")).is_err());
    }

    #[test]
    fn error_codes_map_to_types() {
        let t = Target {
            subject: Some("s"),
            version: Some(3),
            id: Some(7),
        };
        let e = |status, body: &str| error_from(status, body.as_bytes(), &t);
        assert_eq!(
            e(404, r#"{"error_code":40401,"message":"x"}"#),
            RegistryError::SubjectNotFound("s".into())
        );
        assert_eq!(
            e(404, r#"{"error_code":40402,"message":"x"}"#),
            RegistryError::VersionNotFound {
                subject: "s".into(),
                version: 3
            }
        );
        assert_eq!(
            e(404, r#"{"error_code":40403,"message":"x"}"#),
            RegistryError::SchemaNotFound(7)
        );
        assert!(matches!(
            e(409, r#"{"error_code":409,"message":"x"}"#),
            RegistryError::Incompatible { .. }
        ));
        assert_eq!(
            e(422, r#"{"error_code":42201,"message":"bad"}"#),
            RegistryError::InvalidSchema("bad".into())
        );
        assert!(matches!(
            e(500, "boom"),
            RegistryError::Server {
                status: 500,
                error_code: 0,
                ..
            }
        ));
        assert!(matches!(
            e(404, "{}"),
            RegistryError::Server { status: 404, .. }
        ));
    }
}
