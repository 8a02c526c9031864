//! `quickstore serve`: the write side on whatever event log the settings
//! name, until SIGTERM or Ctrl-C (then: stop taking requests, drain, finish
//! every worker's batch, leave the groups, exit 0).

use anyhow::Result;
use platform::config::Settings;

use crate::cli::ServeArgs;
use crate::system::System;
use crate::write_side::{WriteSide, WriteSideOptions};

pub async fn run(settings: Settings, args: ServeArgs) -> Result<()> {
    let mut shutdown = crate::shutdown::ShutdownSignal::install()?;
    let system = System::connect(settings).await?;
    let mut options = WriteSideOptions::from_settings(&system);
    if let Some(listen) = args.listen {
        options.listen = listen;
    }
    options.instance = args.instance;
    options.simulated_couriers = (1..=args.simulated_couriers)
        .map(|i| format!("simulated-courier-{i}"))
        .collect();
    let side = WriteSide::start(&system, options).await?;
    if args.seed_demo {
        crate::seed::demo_shop(&side.state).await?;
    }
    let url = side.url();
    if let Some(path) = &args.url_file {
        // Written last and atomically: a reader that sees it can connect.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &url)?;
        std::fs::rename(&tmp, path)?;
    }
    println!("QuickStore command API at {url} (OpenAPI at {url}/openapi.json)");
    shutdown.received().await;
    side.stop().await?;
    eprintln!("stopped");
    Ok(())
}
