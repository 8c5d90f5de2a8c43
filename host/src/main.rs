//! `realtime-host`: the Library Realtime server binary.

use clap::Parser;
use realtime_host::{cli, server};

/// With the `mimalloc` feature (an experiment: bench/NOTES.md), mimalloc serves every
/// allocation instead of glibc's malloc.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    realtime_host::memory::configure_allocator();
    realtime_host::storage::sqlite::configure();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = match cli.command {
        cli::Command::Serve(args) => runtime.block_on(server::serve(args)),
        cli::Command::Deploy(args) => runtime.block_on(realtime_host::deploy::deploy(args)),
    };
    // The shutdown is bounded by `--shutdown-timeout`: tasks still waiting (on a NATS server
    // that does not answer, say) do not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    result
}
