//! `upay`: the settlement and payout engine's command line. `main` parses the
//! arguments and hands over; each command lives in its own module of the
//! library (`bin/lib.rs`), which the benchmark binary shares.

use upay::{app, cli};

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors exit 2.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    app::init_tracing();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    // A broken invariant is an assertion that stays on in release: it stops the
    // command with exit 3; the step it interrupted recorded nothing.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(app::run(cli)))) {
        Ok(Ok(code)) => ExitCode::from(code),
        Ok(Err(e)) => {
            eprintln!("upay: {e}");
            ExitCode::from(e.exit_code())
        }
        Err(_) => {
            eprintln!("upay: internal invariant broken (see the message above); nothing of the unfinished step was recorded");
            ExitCode::from(3)
        }
    }
}
