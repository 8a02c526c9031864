//! `quickstore registry serve`: the embedded schema registry over the
//! Confluent REST API — what `quickstore dev` users point kcat or
//! confluent-kafka at, and what the test suite tests the HTTP client
//! against (no real registry can be installed on the CI machine).

use std::sync::Arc;

use anyhow::{Context as _, Result};
use platform::config::Settings;
use schemas::registry::EmbeddedRegistry;

use crate::cli::RegistryServeArgs;

pub async fn serve(settings: Settings, args: RegistryServeArgs) -> Result<()> {
    let mut shutdown = crate::shutdown::ShutdownSignal::install()?;
    let registry = if args.in_memory {
        EmbeddedRegistry::in_memory()
    } else {
        EmbeddedRegistry::open(settings.data_dir.join("registry"))?
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (pass --listen HOST:PORT, port 0 for any)",
                args.listen
            )
        })?;
    let url = format!("http://{}", listener.local_addr()?);
    if let Some(file) = &args.url_file {
        // Written whole, then renamed: a script polling it never reads half a URL.
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, &url)?;
        std::fs::rename(&tmp, file)?;
    }
    eprintln!("schema registry (Confluent REST API) at {url}");
    tokio::select! {
        served = schemas::registry::http::serve(listener, Arc::new(registry)) => served?,
        _ = shutdown.received() => eprintln!("stopping the registry"),
    }
    Ok(())
}
