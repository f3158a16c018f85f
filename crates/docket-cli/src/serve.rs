//! `docket serve`: the HTTP API on an embedded store, seeded with the demo
//! when the directory holds no ledger.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use docket_server::{Server, ServerLimits};

pub fn serve(dir: &Path, addr: SocketAddr, demo_subjects: u64) -> Result<bool> {
    if !dir.join("ledger.json").exists() {
        eprintln!("{} holds no ledger: building the demo ({demo_subjects} subjects) first", dir.display());
        crate::ledger::demo(dir, demo_subjects, 1)?;
    }
    let server = Server::open(dir, ServerLimits::default()).with_context(|| format!("opening {}", dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        let url = Server::url(listener.local_addr()?);
        let key = dir.join("keys/agencies/spc.key");
        println!("docket serving {} on {url}  (Ctrl-C stops it)\n", dir.display());
        println!("Try:");
        println!("  curl '{url}/v1/views/public?list=cn-civil-aviation'        # the public list, masked");
        println!("  curl '{url}/v1/views/enforcement?agency=china-railway'     # a railway operator's worklist");
        println!("  curl '{url}/v1/feed?cursor=0&limit=2'                      # the change feed from the start");
        println!("  curl -N '{url}/v1/feed/sse?kind=notice&cursor=0'           # the same, live, as Server-Sent Events");
        println!("  curl '{url}/v1/checkpoint'                                 # the latest signed checkpoint");
        println!("  curl '{url}/metrics'");
        println!("  # append a notice, signed with the demo court's key; again, and the receipt is the same:");
        println!(
            "  cargo run -q --release -p docket-cli -- sign --key {} schemas/examples/notice.json | curl -sS -X POST --data-binary @- {url}/v1/events",
            key.display()
        );
        println!("\nEndpoints and error codes: crates/docket-server/API.md");
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!("stopping: finishing requests, signing a last checkpoint");
        };
        server.serve(listener, shutdown).await?;
        anyhow::Ok(())
    })?;
    Ok(true)
}
