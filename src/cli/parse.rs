//! `sipact parse [FILE|-] [--canonical]`.

use std::io::Read;
use std::process::ExitCode;

use sipact::message::{Limits, SipMessage};

use super::exit;

/// Parses one message; prints it as JSON (or canonically) and exits 0, or
/// prints the error with its byte offset and exits 1 (2: unreadable input).
pub fn run(file: Option<&str>, canonical: bool) -> ExitCode {
    let mut data = Vec::new();
    let read = match file {
        None | Some("-") => std::io::stdin().read_to_end(&mut data).map(|_| ()),
        Some(path) => std::fs::read(path).map(|d| data = d),
    };
    if let Err(e) = read {
        eprintln!("sipact parse: cannot read {}: {e}", file.unwrap_or("standard input"));
        return ExitCode::from(exit::USAGE);
    }
    match SipMessage::parse_with(data.into(), &Limits::default()) {
        Ok(msg) => {
            if canonical {
                super::output::write_out(&msg.to_string());
            } else {
                super::output::line(&sipact::json::message_json(&msg).to_string());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sipact parse: {e}");
            let v = serde_json::json!({ "error": e.kind, "offset": e.offset, "header": e.header, "message": e.to_string() });
            super::output::line(&v.to_string());
            ExitCode::from(exit::PARSE_ERROR)
        }
    }
}
