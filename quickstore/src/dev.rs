//! `quickstore dev`: QuickStore in one process on the embedded log — the
//! command API, the six command processors, the order-fulfillment saga,
//! the projectors (into the embedded read store) and the schema registry —
//! with a demo shop created on first start, and a short walk-through
//! printed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use platform::config::{EventLogBackend, ReadStoreBackend, Settings};
use projectors::service::ServiceStatus;
use tokio::sync::watch;

use crate::cli::DevArgs;
use crate::read_side::{ReadSide, ReadSideOptions};
use crate::seed::{self, DEMO_ADMIN, DEMO_COURIER, DEMO_CUSTOMER, DEMO_PASSWORD};
use crate::system::{connect_read_store, System};
use crate::write_side::{WriteSide, WriteSideOptions};

/// Waits (bounded) until every projection has caught up.
async fn caught_up(mut status: watch::Receiver<ServiceStatus>, within: Duration) -> bool {
    // A lag measured after the events in question were appended (not by
    // a measurement already under way).
    let since = status.borrow_and_update().measured;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        {
            let now = status.borrow_and_update();
            if now.measured > since + 1 && now.lag() == Some(0) {
                return true;
            }
        }
        if tokio::time::timeout_at(deadline, status.changed())
            .await
            .map_or(true, |r| r.is_err())
        {
            return false;
        }
    }
}

pub async fn run(mut settings: Settings, args: DevArgs) -> Result<()> {
    let mut shutdown = crate::shutdown::ShutdownSignal::install()?;
    // `dev` is the single-binary mode by definition.
    settings.event_log = EventLogBackend::Embedded;
    settings.read_store = ReadStoreBackend::Embedded;
    settings.schema_registry_url = None;
    let data_dir = settings.data_dir.clone();
    let store = connect_read_store(&settings).await?;
    let service_config = crate::projections_cmd::service_config(&settings);
    let system = System::connect(settings).await?;
    let mut options = WriteSideOptions::from_settings(&system);
    if let Some(listen) = args.listen {
        options.listen = listen;
    }
    if args.auto_deliver {
        options.simulated_couriers = vec!["simulated-courier-1".into()];
    }
    // The usual port when free; any port otherwise, so a second checkout
    // or a busy 8080 does not stop a newcomer.
    if tokio::net::TcpListener::bind(&options.listen)
        .await
        .is_err()
    {
        options.listen = "127.0.0.1:0".into();
    }
    // One key store for both sides: the command API seals with it, the query API reveals.
    let keys = crate::customers_cmd::key_store(&store).await?;
    options.keys = Some(Arc::clone(&keys));
    let side = WriteSide::start(&system, options).await?;
    let projection_names: Vec<&str> = projectors::projections::all()
        .iter()
        .map(|p| p.name())
        .collect();
    let projection_names = projection_names.join(", ");
    let mut read_options = ReadSideOptions::from_settings(
        &system.settings,
        format!("{}/.well-known/jwks.json", side.api_url()?),
    );
    read_options.service = service_config;
    read_options.keys = Some(keys);
    if tokio::net::TcpListener::bind(&read_options.listen)
        .await
        .is_err()
    {
        read_options.listen = "127.0.0.1:0".into();
    }
    let read_side = ReadSide::start(&system, store, read_options).await?;
    let shop = seed::demo_shop(side.api_state()?).await?;
    let api = side.api_url()?;
    let query = read_side.url();

    println!(
        "QuickStore dev — embedded event log in {}",
        data_dir.display()
    );
    println!();
    crate::topics::print_topics(system.log.as_ref()).await?;
    println!();
    println!("Command API   {api}        (OpenAPI {api}/openapi.json, docs {api}/docs)");
    println!("Query API     {query}        (OpenAPI {query}/openapi.json, docs {query}/docs)");
    println!(
        "Projections   running: {projection_names} → embedded read store in {}",
        data_dir.join("readstore").display()
    );
    let registry = if args.once {
        None
    } else {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:8081").await {
            Ok(l) => l,
            Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        };
        let url = format!("http://{}", listener.local_addr()?);
        // The same files the system's registry writes: served read-mostly
        // for standard tools (kcat -s, confluent-kafka's deserializer).
        let store = Arc::new(schemas::registry::EmbeddedRegistry::open(
            data_dir.join("registry"),
        )?);
        println!("Schema registry {url}   (Confluent REST API: {url}/subjects)");
        Some(tokio::spawn(schemas::registry::http::serve(
            listener, store,
        )))
    };
    println!();
    println!("Demo users (password `{DEMO_PASSWORD}`): {DEMO_ADMIN} (admin), {DEMO_COURIER} (courier {}), {DEMO_CUSTOMER} (customer {})", shop.courier_id, shop.customer_id);
    println!("Products: MUG-1, TEA-1, PAN-1, KETTLE-1, CUP-1 (see README for the rest)");
    println!();
    println!("Try it:");
    println!("  TOKEN=$(curl -s {api}/auth/login -H 'content-type: application/json' \\");
    println!("    -d '{{\"email\":\"{DEMO_CUSTOMER}\",\"password\":\"{DEMO_PASSWORD}\"}}' | jq -r .access_token)");
    println!("  curl -s {api}/orders -H \"authorization: Bearer $TOKEN\" -H 'content-type: application/json' \\");
    println!("    -H 'idempotency-key: my-first-order' \\");
    println!("    -d '{{\"lines\":[{{\"sku\":\"MUG-1\",\"quantity\":2}}],\"payment\":{{\"card_number\":\"4242 4242 4242 4242\"}},");
    println!("         \"shipping_address\":{{\"recipient\":\"Carl\",\"line1\":\"1 Main St\",\"city\":\"Berlin\",\"postal_code\":\"10115\",\"country\":\"DE\"}}}}'");
    println!("  # read it back (the position token makes the read wait for the projection):");
    println!("  curl -s {query}/customers/me/orders -H \"authorization: Bearer $TOKEN\"");
    println!("  curl -N {query}/customers/me/orders/stream -H \"authorization: Bearer $TOKEN\"   # live status (SSE)");
    println!("  # then, as the courier (log in as {DEMO_COURIER}) and admin: see README \"A walk through an order\"");
    if args.auto_deliver {
        println!(
            "  # --auto-deliver: a simulated courier assigns, picks up and delivers every order"
        );
    }
    println!();
    println!(
        "More (after Ctrl-C): quickstore topics · quickstore projections status · quickstore dlq list · deploy/test.sh runs every test"
    );
    if args.once {
        side.stop().await?;
        // The read models hold the demo shop before this returns.
        if let Some(status) = read_side.watch() {
            if !caught_up(status, Duration::from_secs(60)).await {
                eprintln!("the projectors had not caught up after 60 s; stopping anyway");
            }
        }
        read_side.stop().await?;
        return Ok(());
    }
    println!("Serving until Ctrl-C.");
    shutdown.received().await;
    side.stop().await?;
    read_side.stop().await?;
    if let Some(registry) = registry {
        registry.abort();
    }
    eprintln!("stopped");
    Ok(())
}
