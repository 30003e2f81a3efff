//! The `sigil` command line: `serve`, `openapi`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sigil::config::{Config, LogFormat, ServeArgs};
use sigil::error::SigilError;

#[derive(Debug, Parser)]
#[command(name = "sigil", version, about = "Cloud ID wallet for AI agents")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTPS API server.
    Serve(Box<ServeArgs>),
    /// Print the OpenAPI document.
    Openapi,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIGIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,actix_server=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

fn fail(e: SigilError) -> ExitCode {
    eprintln!("sigil: {e}");
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Openapi => {
            print!("{}", sigil::http::openapi::document_json());
            ExitCode::SUCCESS
        }
        Command::Serve(args) => {
            let config = match Config::from_args(*args) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            init_logging(config.log_format);
            // actix-web runs its own per-worker runtimes under one System.
            match actix_web::rt::System::new().block_on(sigil::startup::serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            }
        }
    }
}
