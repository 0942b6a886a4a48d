//! `rbackup init`: creates a repository (config, key files) and, when asked, the writer key.
//!
//! Not for: the repository format (`rdump::backup`).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use rdump::backup::error::BackupError;
use rdump::backup::store::StoreOptions;
use rdump::backup::{self, Access, InitOptions};

use crate::common::{RepoArg, read_recipients_file};

#[derive(Args, Debug)]
pub struct InitArgs {
    #[command(flatten)]
    repo: RepoArg,
    /// A reader: an age X25519 recipient (age1…). Repeatable.
    #[arg(long = "recipient", value_name = "AGE_PUBKEY")]
    recipients: Vec<String>,
    /// Readers: a file of age recipients, one per line (# comments).
    #[arg(long, value_name = "F")]
    recipients_file: Option<PathBuf>,
    /// A reader passphrase, the file's first line (a key file of its own).
    #[arg(long, value_name = "F")]
    passphrase_file: Option<PathBuf>,
    /// Store everything unencrypted (anyone who reads the storage reads the backups).
    #[arg(long, conflicts_with_all = ["recipients", "recipients_file", "passphrase_file"])]
    no_encryption: bool,
    /// Write the writer key here (mode 0600): it lets a database host add backups
    /// without being able to read any. The file must not exist.
    #[arg(long, value_name = "F")]
    writer_key_file: Option<PathBuf>,
}

pub async fn run(args: InitArgs) -> Result<(), BackupError> {
    let mut recipients = args.recipients.clone();
    if let Some(f) = &args.recipients_file {
        recipients.extend(read_recipients_file(f)?);
    }
    let passphrase = match &args.passphrase_file {
        Some(f) => match Access::passphrase_file(f)? {
            Access::Passphrase(p) => Some(p),
            _ => unreachable!(),
        },
        None => None,
    };
    // Refuse an existing writer key file before anything is created.
    let mut key_out = match &args.writer_key_file {
        Some(path) => Some(create_secret_file(path)?),
        None => None,
    };
    let options = InitOptions {
        recipients,
        passphrase,
        no_encryption: args.no_encryption,
        scrypt_log_n: None,
    };
    let result = backup::init(&args.repo.repo, options, &StoreOptions::from_env()?).await;
    let (repo, writer) = match result {
        Ok(r) => r,
        Err(e) => {
            if let Some(path) = &args.writer_key_file {
                drop(key_out.take());
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
    };
    println!(
        "created repository {} at {} ({})",
        repo.config.id,
        args.repo.repo,
        if repo.keys.encrypted() {
            "encrypted with age"
        } else {
            "NOT encrypted"
        }
    );
    match (writer, key_out, &args.writer_key_file) {
        (Some(w), Some(mut file), Some(path)) => {
            file.write_all(w.to_text().as_bytes())
                .and_then(|_| file.sync_all())
                .map_err(|e| BackupError::Usage(format!("{}: {e}", path.display())))?;
            println!("writer key written to {}", path.display());
        }
        (_, Some(_), Some(path)) => {
            drop(std::fs::remove_file(path));
            println!("no writer key: the repository is not encrypted");
        }
        _ => {}
    }
    Ok(())
}

fn create_secret_file(path: &PathBuf) -> Result<std::fs::File, BackupError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| BackupError::Usage(format!("{}: {e}", path.display())))
}
