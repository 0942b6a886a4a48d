//! The `rdump` command: parse mysqldump's command line, run the dump, exit with
//! mysqldump's exit codes. Everything else lives in the library.

use std::ffi::OsString;
use std::process::ExitCode;

use rdump::client::options::{Password, Secret};
use rdump::error::{Error, exit};
use rdump::options::{self, Env};
use rdump::plan::{Command, Output, Plan};

const GROUPS: &[&str] = &["client", "mysqldump", "rdump"];

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let parsed = options::parse(&args, &Env::from_process(), GROUPS);
    rdump::process::argv::mask(options::secret_span);
    let code = match parsed {
        Err(e) => {
            eprintln!("rdump: {e}");
            eprintln!("Use --help for the list of options.");
            e.exit_code()
        }
        Ok(Command::Help) => {
            print!("{}", options::help_text("rdump"));
            exit::OK
        }
        Ok(Command::PrintDefaults(line)) => {
            println!("rdump would have been started with the following arguments:\n{line}");
            exit::OK
        }
        Ok(Command::Version) => {
            println!("{}", options::version_line("rdump"));
            exit::OK
        }
        Ok(Command::Dump(plan)) => match run(*plan) {
            Ok(()) => exit::OK,
            Err(e) => {
                // No bar lines above (or after) the message.
                rdump::process::progress::stop();
                eprintln!("rdump: {e}");
                e.exit_code()
            }
        },
    };
    ExitCode::from(code as u8)
}

fn run(mut plan: Plan) -> Result<(), Error> {
    if plan.connection.password == Password::Prompt {
        let pw = rdump::process::prompt::password("Enter password: ")
            .map_err(|e| Error::Usage(format!("could not read the password: {e}")))?;
        plan.connection.password = Password::Given(Secret::new(pw));
    }
    if let Output::Tab { dir, .. } = &plan.output {
        rdump::dump::stream::check_tab_dir(dir)?;
    }
    // Before any thread starts, so that all of them inherit it.
    rdump::process::sched::batch();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("could not start the runtime: {e}")))?;
    let mut watch = rdump::process::signals::watch();
    runtime.block_on(async {
        if let Output::Dir(opts) = &plan.output {
            return tokio::select! {
                r = rdump::dump::dir::run(&plan, opts) => r.map(|_| ()),
                e = interrupted(&mut watch) => Err(e),
            };
        }
        tokio::select! {
            r = rdump::dump::stream::run(&plan) => match r {
                Ok(summary) if summary.errors.is_empty() => Ok(()),
                Ok(summary) => Err(Error::Incomplete {
                    server: rdump::client::conn::server_label(&plan.connection),
                    count: summary.errors.len(),
                    messages: summary.errors.join("; "),
                    code: summary.first_error_code.unwrap_or(exit::MYSQL_ERROR),
                }),
                Err(e) => Err(e),
            },
            // Dropping the dump future removes any uncommitted result file.
            e = interrupted(&mut watch) => Err(e),
        }
    })
}

/// Resolves when SIGINT, SIGTERM or SIGHUP arrives.
async fn interrupted(watch: &mut rdump::process::signals::Watch) -> Error {
    let (name, signal) = watch.interrupted().await;
    Error::Interrupted { name, signal }
}
