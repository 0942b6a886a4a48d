//! The `rload` command: parse the command line (`[client]` and `[rload]` option groups),
//! load the dump, print the summary, exit with rload's exit codes (see `rdump::load::error`).
//! Everything else lives in the library (`rdump::load`).

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use rdump::client::options::{Password, Secret};
use rdump::error::exit;
use rdump::load::error::LoadError;
use rdump::load::{LoadCommand, LoadOptions};
use rdump::options::{Env, rload};

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let parsed = rload::parse(&args, &Env::from_process(), rload::GROUPS);
    rdump::process::argv::mask(rload::secret_span);
    let code = match parsed {
        Err(e) => {
            eprintln!("rload: {e}");
            eprintln!("Use --help for the list of options.");
            exit::USAGE
        }
        Ok(LoadCommand::Help) => {
            print!("{}", rload::help_text());
            exit::OK
        }
        Ok(LoadCommand::Version) => {
            println!(
                "rload {} (rdump directory loader)",
                env!("CARGO_PKG_VERSION")
            );
            exit::OK
        }
        Ok(LoadCommand::Load(opts)) => run(*opts),
    };
    ExitCode::from(code as u8)
}

fn prompt(what: &str, p: &mut Password) -> Result<(), LoadError> {
    if *p == Password::Prompt {
        let pw = rdump::process::prompt::password(what).map_err(|e| {
            LoadError::Rdump(rdump::error::Error::Usage(format!(
                "could not read the password: {e}"
            )))
        })?;
        *p = Password::Given(Secret::new(pw));
    }
    Ok(())
}

fn run(mut opts: LoadOptions) -> i32 {
    let prompted = prompt("Enter password: ", &mut opts.connection.password).and_then(|()| {
        match opts.replica.as_mut() {
            Some(r) => prompt("Enter the source's replication password: ", &mut r.password),
            None => Ok(()),
        }
    });
    if let Err(e) = prompted {
        eprintln!("rload: {e}");
        return e.exit_code();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.threads.clamp(2, 8))
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rload: could not start the runtime: {e}");
            return exit::USAGE;
        }
    };
    let changed = AtomicBool::new(false);
    let mut watch = rdump::process::signals::watch();
    let result = runtime.block_on(async {
        tokio::select! {
            r = rdump::load::run(&opts, &changed) => r,
            // Dropping the load closes its connections: open chunk transactions roll back.
            e = interrupted(&mut watch) => Err(e),
        }
    });
    // Do not wait for blocking readers of an abandoned load.
    runtime.shutdown_background();
    match result {
        Ok(summary) => {
            if !opts.quiet {
                eprintln!("{}", summary.line());
            }
            exit::OK
        }
        Err(e) => {
            // The abandoned load's threads may still report: no bar after this message.
            rdump::process::progress::stop();
            eprintln!("rload: {e}");
            if changed.load(Ordering::Relaxed) {
                eprintln!(
                    "rload: the load is incomplete; once the cause is fixed, run the same \
                     command with --resume to finish it"
                );
            }
            e.exit_code()
        }
    }
}

/// Resolves when SIGINT, SIGTERM or SIGHUP arrives.
async fn interrupted(watch: &mut rdump::process::signals::Watch) -> LoadError {
    let (name, signal) = watch.interrupted().await;
    LoadError::Interrupted { name, signal }
}
