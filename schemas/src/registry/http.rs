//! The embedded registry served over the Confluent Schema Registry REST
//! subset (feature `http-server`), so standard tools (confluent-kafka's
//! `AvroDeserializer`, `kcat -s avro`, fastavro with a registry client) can
//! decode topics written by `quickstore dev`, and so [`super::ConfluentRegistry`]
//! can be tested without a real server.
//!
//! Endpoints: `GET /subjects`, `GET|POST /subjects/{s}/versions`,
//! `GET /subjects/{s}/versions/{n|latest}`, `GET /schemas/ids/{id}`,
//! `GET|PUT /config`, `GET|PUT /config/{s}`,
//! `POST /compatibility/subjects/{s}/versions/{n|latest}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::confluent::CONTENT_TYPE;
use super::{compat, CompatibilityLevel, EmbeddedRegistry, RegistryError, SchemaRegistry};

type Registry = Arc<dyn SchemaRegistry>;

/// The Confluent REST subset over `registry`.
pub fn router(registry: Arc<EmbeddedRegistry>) -> Router {
    let registry: Registry = registry;
    Router::new()
        .route("/", get(|| async { ok(json!({})) }))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(version))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/config", get(global_config).put(set_global_config))
        .route(
            "/config/{subject}",
            get(subject_config).put(set_subject_config),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(check_compatibility),
        )
        .with_state(registry)
}

/// Serves [`router`] on `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Arc<EmbeddedRegistry>,
) -> std::io::Result<()> {
    axum::serve(listener, router(registry)).await
}

struct ApiError {
    status: StatusCode,
    code: u32,
    message: String,
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let (status, code) = match &e {
            RegistryError::SubjectNotFound(_) => (StatusCode::NOT_FOUND, 40401),
            RegistryError::VersionNotFound { .. } => (StatusCode::NOT_FOUND, 40402),
            RegistryError::SchemaNotFound(_) => (StatusCode::NOT_FOUND, 40403),
            RegistryError::Incompatible { .. } => (StatusCode::CONFLICT, 409),
            RegistryError::InvalidSchema(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42201),
            RegistryError::InvalidCompatibilityLevel(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, 42203)
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, 50001),
        };
        ApiError {
            status,
            code,
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        respond(
            self.status,
            json!({ "error_code": self.code, "message": self.message }),
        )
    }
}

fn respond(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        body.to_string(),
    )
        .into_response()
}

fn ok(body: Value) -> Response {
    respond(StatusCode::OK, body)
}

fn unprocessable(code: u32, message: String) -> ApiError {
    ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code,
        message,
    }
}

/// Parses a JSON body whatever its content type (Confluent clients send
/// `application/vnd.schemaregistry.v1+json`, `application/json` or none).
fn body<T: for<'de> Deserialize<'de>>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: 422,
        message: format!("unrecognized request body: {e}"),
    })
}

#[derive(Deserialize)]
struct SchemaBody {
    schema: String,
    #[serde(default, rename = "schemaType")]
    schema_type: Option<String>,
}

impl SchemaBody {
    fn avro(self) -> Result<String, ApiError> {
        match self.schema_type.as_deref() {
            None | Some("AVRO") => Ok(self.schema),
            Some(other) => Err(unprocessable(
                42201,
                format!("only AVRO schemas are supported, not {other}"),
            )),
        }
    }
}

#[derive(Deserialize)]
struct ConfigBody {
    compatibility: String,
}

enum VersionRef {
    Latest,
    Number(u32),
}

fn version_ref(s: &str) -> Result<VersionRef, ApiError> {
    if s == "latest" || s == "-1" {
        return Ok(VersionRef::Latest);
    }
    match s.parse::<u32>() {
        Ok(n) if n > 0 => Ok(VersionRef::Number(n)),
        _ => Err(unprocessable(
            42202,
            format!("invalid version {s:?}: a positive integer or \"latest\""),
        )),
    }
}

async fn subjects(State(r): State<Registry>) -> Result<Response, ApiError> {
    Ok(ok(json!(r.subjects().await?)))
}

async fn versions(
    State(r): State<Registry>,
    Path(subject): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(json!(r.versions(&subject).await?)))
}

async fn register(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let schema = body::<SchemaBody>(&bytes)?.avro()?;
    let id = r.register(&subject, &schema).await?;
    Ok(ok(json!({ "id": id })))
}

async fn version(
    State(r): State<Registry>,
    Path((subject, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let v = match version_ref(&version)? {
        VersionRef::Latest => r.latest(&subject).await?,
        VersionRef::Number(n) => r.version(&subject, n).await?,
    };
    Ok(ok(json!({
        "subject": v.subject,
        "version": v.version,
        "id": v.id,
        "schema": v.schema,
    })))
}

async fn schema_by_id(
    State(r): State<Registry>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = id
        .parse::<u32>()
        .map_err(|_| ApiError::from(RegistryError::SchemaNotFound(0)))?;
    Ok(ok(json!({ "schema": r.schema_by_id(id).await? })))
}

async fn global_config(State(r): State<Registry>) -> Result<Response, ApiError> {
    let level = r.compatibility(None).await?;
    Ok(ok(json!({ "compatibilityLevel": level.as_str() })))
}

async fn subject_config(
    State(r): State<Registry>,
    Path(subject): Path<String>,
) -> Result<Response, ApiError> {
    let level = r.compatibility(Some(&subject)).await?;
    Ok(ok(json!({ "compatibilityLevel": level.as_str() })))
}

async fn set_config(
    r: &Registry,
    subject: Option<&str>,
    bytes: &Bytes,
) -> Result<Response, ApiError> {
    let level: CompatibilityLevel = body::<ConfigBody>(bytes)?.compatibility.parse()?;
    r.set_compatibility(subject, level).await?;
    Ok(ok(json!({ "compatibility": level.as_str() })))
}

async fn set_global_config(State(r): State<Registry>, bytes: Bytes) -> Result<Response, ApiError> {
    set_config(&r, None, &bytes).await
}

async fn set_subject_config(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    set_config(&r, Some(&subject), &bytes).await
}

async fn check_compatibility(
    State(r): State<Registry>,
    Path((subject, version)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let schema = body::<SchemaBody>(&bytes)?.avro()?;
    let compatible = match version_ref(&version)? {
        VersionRef::Latest => {
            // Confluent answers 40401 for a subject without versions.
            r.latest(&subject).await?;
            r.check_compatibility(&subject, &schema).await?
        }
        VersionRef::Number(n) => {
            let old = r.version(&subject, n).await?;
            let level = r.compatibility(Some(&subject)).await?;
            let parse = |s: &str| {
                apache_avro::Schema::parse_str(s)
                    .map_err(|e| RegistryError::InvalidSchema(e.to_string()))
            };
            compat::check(level, &parse(&schema)?, &[parse(&old.schema)?]).is_ok()
        }
    };
    Ok(ok(json!({ "is_compatible": compatible })))
}
