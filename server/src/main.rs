//! `clientdata-server`: see `--help` and server/README.md.

use std::process::ExitCode;

use clap::Parser;
use clientdata_server::config::Config;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn main() -> ExitCode {
    let config = Config::parse();
    // Logs go to stderr; stdout carries only the `listening on` line (or an operation's output).
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(config.log.clone())
        .init();
    if let Some(command) = &config.command {
        // Operations are blocking, outside any async runtime (the PostgreSQL client runs its own).
        return match clientdata_server::ops::run(command, &config) {
            Ok(code) => code,
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(clientdata_server::app::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
