//! `realtime-host deploy <name> <file.wasm>`: hot-swap a component on a running server
//! through `PUT /admin/components/<name>`.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;

use crate::cli::DeployArgs;

pub async fn deploy(args: DeployArgs) -> Result<()> {
    let wasm = tokio::fs::read(&args.file).await.with_context(|| format!("reading {}", args.file.display()))?;
    let url = url::Url::parse(&args.url).with_context(|| format!("`{}` is not a URL", args.url))?;
    if url.scheme() != "http" {
        bail!("only http:// servers are supported");
    }
    let host = url.host_str().context("the URL has no host")?.to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host.as_str(), port)).await.with_context(|| format!("connecting to {host}:{port}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let path = format!("{}/admin/components/{}", url.path().trim_end_matches('/'), args.name);
    let request = hyper::Request::put(path)
        .header(HOST, format!("{host}:{port}"))
        .header(AUTHORIZATION, format!("Bearer {}", args.admin_token))
        .header(CONTENT_TYPE, "application/wasm")
        .body(Full::new(Bytes::from(wasm)))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let body = String::from_utf8_lossy(&body);
    if status.is_success() {
        println!("{}", body.trim());
        Ok(())
    } else {
        bail!("{status}: {}", body.trim())
    }
}
