//! `quickstore query-api`: the query API as its own service (the read
//! side's other half is `quickstore projections run`; `--with-projectors`
//! runs both in one process).

use anyhow::Result;
use platform::config::Settings;

use crate::cli::QueryApiArgs;
use crate::read_side::{ReadSide, ReadSideOptions};
use crate::system::{connect_read_store, System};

pub async fn run(settings: Settings, args: QueryApiArgs) -> Result<()> {
    let mut shutdown = crate::shutdown::ShutdownSignal::install()?;
    let jwks_url = args.jwks_url.clone().unwrap_or_else(|| {
        format!(
            "http://{}/.well-known/jwks.json",
            settings.command_api_listen
        )
    });
    let store = connect_read_store(&settings).await?;
    let service = crate::projections_cmd::service_config(&settings);
    let system = System::connect(settings).await?;
    let mut options = ReadSideOptions::from_settings(&system.settings, jwks_url.clone());
    if let Some(listen) = args.listen {
        options.listen = listen;
    }
    options.service = service;
    if !args.with_projectors {
        options.projections = Some(Vec::new());
    }
    let side = ReadSide::start(&system, store, options).await?;
    let url = side.url();
    if let Some(path) = &args.url_file {
        // Written last and atomically: a reader that sees it can connect.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &url)?;
        std::fs::rename(&tmp, path)?;
    }
    println!(
        "QuickStore query API at {url} (OpenAPI at {url}/openapi.json; tokens verified with {jwks_url}){}",
        if args.with_projectors { "; projectors running" } else { "" }
    );
    shutdown.received().await;
    side.stop().await?;
    eprintln!("stopped");
    Ok(())
}
