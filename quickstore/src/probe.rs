//! `quickstore probe URL`: a health check a container can run without curl
//! (the runtime image has no HTTP client but this binary). Exit code 0 when
//! the URL answers 2xx within the timeout, 1 otherwise — what
//! docker-compose's `healthcheck.test` expects.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use crate::cli::ProbeArgs;

pub async fn run(args: ProbeArgs) -> Result<()> {
    let url = reqwest::Url::parse(&args.url).with_context(|| {
        format!(
            "`{}` is not a URL (e.g. http://127.0.0.1:8080/readyz)",
            args.url
        )
    })?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(args.timeout_ms))
        .build()?;
    let response = client
        .get(url.clone())
        .send()
        .await
        .with_context(|| format!("{url} did not answer"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        bail!(
            "{url} answered {status}: {}",
            body.chars().take(500).collect::<String>()
        );
    }
    Ok(())
}
