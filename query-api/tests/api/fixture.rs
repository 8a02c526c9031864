//! A query API over an in-memory read store, with tokens minted by a real
//! issuer, rows written as projections write them (orders by projecting
//! real events), and requests sent through the router with `oneshot`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use platform::auth::{MemoryCredentialStore, Role, SigningKeys, TokenIssuer};
use platform::readstore::{EmbeddedStore, Mutation, ReadStore, Row, TableDef, Value};
use projectors::projection::{upsert, Input, Projected, Projection};
use projectors::projections::orders::OrdersProjection;
use query_api::{QueryConfig, QueryState, VerifierSource};
use schemas::orders::{OrderLine, OrderPlaced, OrderTotals, OrdersEvent};
use schemas::{AnyEvent, EventEnvelope, PostalAddress};
use tower::ServiceExt;

pub const ISSUER: &str = "quickstore";
pub const AUDIENCE: &str = "quickstore";

pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap())
        .unwrap()
}

#[derive(Clone)]
pub struct Fixture {
    pub store: Arc<EmbeddedStore>,
    pub issuer: TokenIssuer,
    pub router: Router,
    /// Added to the system time on the query API's clock (ms).
    pub clock_offset: Arc<AtomicI64>,
}

/// A config fit for tests: short waits, fast polling.
pub fn test_config() -> QueryConfig {
    QueryConfig {
        read_your_writes_timeout: Duration::from_millis(2000),
        stream_poll_interval: Duration::from_millis(20),
        generation_refresh: Duration::from_millis(50),
        ..QueryConfig::default()
    }
}

pub fn issuer_with(keys: Arc<SigningKeys>, audience: &str) -> TokenIssuer {
    TokenIssuer::new(
        keys,
        Arc::new(MemoryCredentialStore::new()),
        ISSUER,
        audience,
    )
}

impl Fixture {
    pub async fn new() -> Self {
        Self::with_config(test_config()).await
    }

    pub async fn with_config(config: QueryConfig) -> Self {
        let store = Arc::new(EmbeddedStore::in_memory().unwrap());
        projectors::generations::ensure(store.as_ref())
            .await
            .unwrap();
        for p in projectors::projections::all() {
            store.ensure_tables(p.tables(), 1).await.unwrap();
        }
        let keys = Arc::new(SigningKeys::generate().unwrap());
        let issuer = issuer_with(keys, AUDIENCE);
        let verifier = VerifierSource::fixed(issuer.verifier().unwrap());
        Self::assemble(store, issuer, verifier, config)
    }

    pub fn assemble(
        store: Arc<EmbeddedStore>,
        issuer: TokenIssuer,
        verifier: VerifierSource,
        config: QueryConfig,
    ) -> Self {
        Self::assemble_with(store, issuer, verifier, config, None)
    }

    /// A fixture whose query API checks `revocations` (ADR 0022).
    pub async fn with_revocations(
        revocations: Arc<platform::auth::revocations::RevocationView>,
    ) -> Self {
        let f = Self::new().await;
        let verifier = VerifierSource::fixed(f.issuer.verifier().unwrap());
        Self::assemble_with(
            f.store,
            f.issuer,
            verifier,
            test_config(),
            Some(revocations),
        )
    }

    pub fn assemble_with(
        store: Arc<EmbeddedStore>,
        issuer: TokenIssuer,
        verifier: VerifierSource,
        config: QueryConfig,
        revocations: Option<Arc<platform::auth::revocations::RevocationView>>,
    ) -> Self {
        let clock_offset = Arc::new(AtomicI64::new(0));
        let offset = clock_offset.clone();
        let state =
            QueryState::new(store.clone(), verifier, config).with_clock(Arc::new(move || {
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| i64::try_from(d.as_millis()).unwrap())
                    .unwrap();
                now_ms + offset.load(Ordering::SeqCst)
            }));
        let state = match revocations {
            Some(view) => state.with_revocations(view),
            None => state,
        };
        let router = query_api::router(state);
        Self {
            store,
            issuer,
            router,
            clock_offset,
        }
    }

    pub fn token(&self, sub: &str, roles: &[Role]) -> String {
        self.issuer
            .sign_access(sub, roles, now_s())
            .unwrap()
            .expose()
            .to_owned()
    }

    /// Moves the query API's clock `ms` ahead of the system time.
    pub fn advance_clock(&self, ms: i64) {
        self.clock_offset.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn customer(&self, id: &str) -> String {
        self.token(id, &[Role::Customer])
    }

    pub fn admin(&self) -> String {
        self.token("admin-1", &[Role::Admin])
    }

    /// Writes rows into `generation`.
    pub async fn write_in(&self, generation: u32, mutations: Vec<Mutation>) {
        let mutations: Vec<Mutation> = mutations
            .into_iter()
            .map(|mut m| {
                m.generation = generation;
                m
            })
            .collect();
        self.store.write(&mutations).await.unwrap();
    }

    /// Upserts one row into generation 1.
    pub async fn put(&self, table: TableDef, cells: Row) {
        self.write_in(1, vec![upsert(table, 1, cells)]).await;
    }

    /// Projects one event through the orders projection into generation 1.
    pub async fn project(&self, envelope: EventEnvelope, event: AnyEvent) {
        self.project_with(&OrdersProjection, envelope, event).await;
    }

    /// Projects one event through `projection` into generation 1.
    pub async fn project_with(
        &self,
        projection: &dyn Projection,
        envelope: EventEnvelope,
        event: AnyEvent,
    ) {
        let mutations = projection
            .project(&Projected {
                topic: "t".into(),
                partition: 0,
                offset: 0,
                input: Input::Event { envelope, event },
            })
            .unwrap();
        self.write_in(1, mutations).await;
    }

    /// Places order `order_id` for `customer` at `at` ms (3097 EUR).
    pub async fn place(&self, order_id: &str, customer: &str, at: i64) {
        self.project(envelope("Order", order_id, 1, at), placed(customer))
            .await;
    }

    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str, token: Option<&str>) -> Answer {
        self.send(request(uri, token)).await
    }
}

pub fn request(uri: &str, token: Option<&str>) -> Request<Body> {
    let mut builder = Request::get(uri);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(Body::empty()).unwrap()
}

#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
}

impl Answer {
    /// Asserts a problem answer: status, content type, code and field.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str, field: Option<&str>) {
        assert_eq!(self.status.as_u16(), status, "{:?}", self.body);
        assert_eq!(
            self.headers["content-type"], "application/problem+json",
            "{:?}",
            self.body
        );
        assert_eq!(self.body["status"], status);
        assert_eq!(self.body["code"], code, "{:?}", self.body);
        assert_eq!(
            self.body["type"],
            format!("https://quickstore.dev/problems/{code}")
        );
        match field {
            Some(f) => assert_eq!(self.body["field"], f, "{:?}", self.body),
            None => assert!(self.body.get("field").is_none(), "{:?}", self.body),
        }
    }

    #[track_caller]
    pub fn ok(&self) -> &serde_json::Value {
        assert_eq!(self.status, StatusCode::OK, "{:?}", self.body);
        &self.body
    }
}

pub fn envelope(aggregate_type: &str, id: &str, version: i64, at: i64) -> EventEnvelope {
    EventEnvelope {
        event_id: format!("e-{id}-{aggregate_type}-{version}"),
        aggregate_type: aggregate_type.into(),
        aggregate_id: id.into(),
        version,
        occurred_at: at,
        command_id: format!("cmd-{version}"),
        correlation_id: "corr-1".into(),
        causation_id: format!("cause-{version}"),
        actor: "customer:c-1".into(),
        prev_hash: vec![],
        hash: vec![],
    }
}

pub fn placed(customer: &str) -> AnyEvent {
    AnyEvent::Orders(OrdersEvent::OrderPlaced(OrderPlaced {
        customer_id: customer.into(),
        lines: vec![OrderLine {
            line_no: 1,
            sku: "MUG-1".into(),
            quantity: 2,
            unit_price_minor: 1299,
            currency: "EUR".into(),
        }],
        shipping_address: PostalAddress {
            recipient: "Ada".into(),
            line1: "1 Main St".into(),
            line2: None,
            city: "Berlin".into(),
            region: None,
            postal_code: "10115".into(),
            country: "DE".into(),
        },
        totals: OrderTotals {
            subtotal_minor: 2598,
            shipping_minor: 499,
            tax_minor: 0,
            total_minor: 3097,
            currency: "EUR".into(),
        },
        payment_token: Some("tok_sim_4242".into()),
    }))
}

pub fn t(s: &str) -> Value {
    Value::Text(s.into())
}
