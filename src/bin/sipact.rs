//! The `sipact` command. Today: `sipact parse [FILE|-]`.

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sipact::message::{Limits, SipMessage};

/// sipact: a SIP user agent.
#[derive(Parser)]
#[command(name = "sipact", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse one SIP message and print it as JSON (exit 0), or print the
    /// error with its byte offset (exit 1).
    Parse {
        /// File to read; `-` or nothing reads standard input.
        file: Option<String>,
        /// Print the canonical form of the message instead of JSON.
        #[arg(long)]
        canonical: bool,
    },
}

fn main() -> ExitCode {
    // Logs go to standard error, filtered by RUST_LOG (default: warnings).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let cli = Cli::parse();
    match cli.command {
        Command::Parse { file, canonical } => parse(file.as_deref(), canonical),
    }
}

/// Exit code for input that could not be read (as opposed to parsed).
const EXIT_IO: u8 = 2;

fn parse(file: Option<&str>, canonical: bool) -> ExitCode {
    let mut data = Vec::new();
    let read = match file {
        None | Some("-") => std::io::stdin().read_to_end(&mut data).map(|_| ()),
        Some(path) => std::fs::read(path).map(|d| data = d),
    };
    if let Err(e) = read {
        eprintln!("sipact parse: cannot read {}: {e}", file.unwrap_or("standard input"));
        return ExitCode::from(EXIT_IO);
    }
    match SipMessage::parse_with(data.into(), &Limits::default()) {
        Ok(msg) => {
            if canonical {
                print!("{msg}");
            } else {
                println!("{}", sipact::json::message_json(&msg));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sipact parse: {e}");
            println!(
                "{}",
                serde_json::json!({ "error": e.kind, "offset": e.offset, "header": e.header, "message": e.to_string() })
            );
            ExitCode::FAILURE
        }
    }
}
