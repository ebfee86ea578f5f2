//! The server binary: parse the command line, hand over to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    workspace_server::run(workspace_server::Cli::parse()).await
}
