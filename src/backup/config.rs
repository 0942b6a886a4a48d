//! The `config` object and opening a repository (REPOSITORY.md, "config" and "Keys"):
//! `init` makes the secrets, writes the key files and then `config` with a create-only
//! put (two inits cannot both succeed); `open` reads `config`, checks its version, turns
//! the caller's `Access` into `Keys` and checks the config's MAC with the naming key.
//!
//! Not for: data objects (see `writer`, `reader`).

use std::sync::Arc;

use age::secrecy::ExposeSecret;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::error::{BackupError, Result};
use super::keys::{
    Access, KeyFile, Keys, NamingKey, WriterKey, decrypt_with, encrypt_to, storage_id,
};
use super::store::{Store, StoreOptions};

/// The repository format version this program reads and writes.
pub const VERSION: u32 = 1;

/// Chunker parameters, fixed for the life of a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    pub algorithm: ChunkerAlgorithm,
    pub min: u32,
    pub avg: u32,
    pub max: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkerAlgorithm {
    #[serde(rename = "fastcdc-2020")]
    FastCdc2020,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            algorithm: ChunkerAlgorithm::FastCdc2020,
            min: 8 * 1024,
            avg: 32 * 1024,
            max: 128 * 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub format: String,
    pub version: u32,
    pub id: String,
    pub created: String,
    pub encryption: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub naming_key: Option<String>,
    pub chunker: ChunkerParams,
    pub compression: String,
    #[serde(default)]
    pub mac: String,
}

impl Config {
    fn canonical(&self) -> Vec<u8> {
        let mut c = self.clone();
        c.mac = String::new();
        serde_json::to_vec(&c).expect("config serializes")
    }

    fn check_mac(&self, naming: &NamingKey) -> Result<()> {
        if naming.config_mac(&self.canonical()) != self.mac {
            return Err(BackupError::damaged(
                "config",
                "its MAC does not match (changed by someone without the naming key, or not this repository's key)",
            ));
        }
        Ok(())
    }
}

/// An opened repository: its storage, config and the caller's keys.
#[derive(Debug, Clone)]
pub struct Repository {
    pub store: Store,
    pub config: Arc<Config>,
    pub keys: Keys,
}

/// What `init` is given.
#[derive(Default)]
pub struct InitOptions {
    /// Readers: age X25519 recipients (`age1…`).
    pub recipients: Vec<String>,
    /// A reader passphrase (gets its own key file).
    pub passphrase: Option<age::secrecy::SecretString>,
    pub no_encryption: bool,
    /// scrypt work factor (log2 N) for a passphrase key file; `None`: age's default
    /// (about a second). Tests lower it.
    pub scrypt_log_n: Option<u8>,
}

/// Creates a repository at `url`. Returns it opened (with a reader's keys) and, for an
/// encrypted repository, the writer key to give to hosts that only write backups.
pub async fn init(
    url: &str,
    options: InitOptions,
    store_options: &StoreOptions,
) -> Result<(Repository, Option<WriterKey>)> {
    let store = Store::open(url, store_options, true)?;
    if store.head("config").await?.is_some() {
        return Err(BackupError::Usage(format!(
            "{url}: a repository already exists here"
        )));
    }
    let encrypted = !options.no_encryption;
    if encrypted && options.recipients.is_empty() && options.passphrase.is_none() {
        return Err(BackupError::Usage(
            "init needs --recipient, --recipients-file or --passphrase-file (or --no-encryption)"
                .into(),
        ));
    }
    if !encrypted && (!options.recipients.is_empty() || options.passphrase.is_some()) {
        return Err(BackupError::Usage(
            "--no-encryption takes no recipients or passphrase".into(),
        ));
    }
    let mut recipients = Vec::new();
    for r in &options.recipients {
        recipients.push(
            r.parse::<age::x25519::Recipient>().map_err(|e| {
                BackupError::Usage(format!("{r}: not an age X25519 recipient: {e}"))
            })?,
        );
    }
    let naming = NamingKey::generate();
    let id = hex::encode(&naming.blob_id(b"repository id").0[..16]);
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public();

    let mut config = Config {
        format: "rbackup".into(),
        version: VERSION,
        id: id.clone(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        encryption: if encrypted { "age" } else { "none" }.into(),
        recipient: encrypted.then(|| recipient.to_string()),
        naming_key: (!encrypted).then(|| naming.to_hex()),
        chunker: ChunkerParams::default(),
        compression: "zstd".into(),
        mac: String::new(),
    };
    config.mac = naming.config_mac(&config.canonical());

    let mut written_keys = Vec::new();
    if encrypted {
        let key_file = serde_json::to_vec(&KeyFile {
            version: 1,
            repository_id: id.clone(),
            identity: identity.to_string().expose_secret().to_string(),
            naming_key: naming.to_hex(),
        })
        .expect("key file serializes");
        let mut wrapped = Vec::new();
        if !recipients.is_empty() {
            let rs: Vec<&dyn age::Recipient> = recipients
                .iter()
                .map(|r| r as &dyn age::Recipient)
                .collect();
            wrapped.push(encrypt_to(&rs, &key_file).map_err(BackupError::Usage)?);
        }
        if let Some(pass) = &options.passphrase {
            let mut r = age::scrypt::Recipient::new(pass.clone());
            if let Some(n) = options.scrypt_log_n {
                r.set_work_factor(n);
            }
            wrapped.push(
                encrypt_to(&[&r as &dyn age::Recipient], &key_file).map_err(BackupError::Usage)?,
            );
        }
        for w in wrapped {
            let name = format!("keys/{}", storage_id(&w));
            store.put(&name, Bytes::from(w)).await?;
            written_keys.push(name);
        }
    }
    let bytes = serde_json::to_vec_pretty(&config).expect("config serializes");
    if !store.create("config", Bytes::from(bytes)).await? {
        for k in written_keys {
            store.delete(&k).await?;
        }
        return Err(BackupError::Usage(format!(
            "{url}: a repository already exists here"
        )));
    }
    let keys = Keys {
        naming: naming.clone(),
        recipient: encrypted.then(|| recipient.clone()),
        identity: encrypted.then_some(identity),
    };
    let writer = encrypted.then(|| WriterKey {
        repository_id: id,
        recipient: recipient.to_string(),
        naming,
    });
    Ok((
        Repository {
            store,
            config: Arc::new(config),
            keys,
        },
        writer,
    ))
}

/// Opens the repository at `url` with what the caller holds.
pub async fn open(url: &str, access: &Access, store_options: &StoreOptions) -> Result<Repository> {
    let store = Store::open(url, store_options, false)?;
    let bytes = match store.get_opt("config").await? {
        Some(b) => b,
        None => {
            return Err(BackupError::Usage(format!(
                "{url}: not an rbackup repository (no config; run rbackup init)"
            )));
        }
    };
    let config: Config = serde_json::from_slice(&bytes)
        .map_err(|e| BackupError::damaged("config", format!("not a repository config: {e}")))?;
    if config.format != "rbackup" {
        return Err(BackupError::damaged("config", "not an rbackup config"));
    }
    if config.version != VERSION {
        return Err(BackupError::Usage(format!(
            "{url}: repository format version {} (this rbackup reads version {VERSION})",
            config.version
        )));
    }
    let keys = match (config.encryption.as_str(), access) {
        ("none", _) => {
            let naming = NamingKey::from_hex(config.naming_key.as_deref().unwrap_or(""))
                .map_err(|_| BackupError::damaged("config", "no naming key"))?;
            Keys {
                naming,
                recipient: None,
                identity: None,
            }
        }
        ("age", access) => {
            let recipient: age::x25519::Recipient = config
                .recipient
                .as_deref()
                .unwrap_or("")
                .parse()
                .map_err(|_| BackupError::damaged("config", "no valid recipient"))?;
            match access {
                Access::None => {
                    return Err(BackupError::Key(format!(
                        "{url}: the repository is encrypted: give --identity-file, --passphrase-file or a writer key"
                    )));
                }
                Access::Writer(w) => {
                    if w.repository_id != config.id || w.recipient != recipient.to_string() {
                        return Err(BackupError::Key(format!(
                            "{url}: the writer key is not this repository's (its repository or recipient differs from config)"
                        )));
                    }
                    Keys {
                        naming: w.naming.clone(),
                        recipient: Some(recipient),
                        identity: None,
                    }
                }
                Access::Identities(_) | Access::Passphrase(_) => {
                    let kf = unwrap_key_file(&store, url, access).await?;
                    let identity: age::x25519::Identity = kf.identity.parse().map_err(|_| {
                        BackupError::Key("a key file holds no valid identity".into())
                    })?;
                    if identity.to_public().to_string() != recipient.to_string()
                        || kf.repository_id != config.id
                    {
                        return Err(BackupError::Key(format!(
                            "{url}: the key file does not belong to this repository's config"
                        )));
                    }
                    Keys {
                        naming: NamingKey::from_hex(&kf.naming_key)?,
                        recipient: Some(recipient),
                        identity: Some(identity),
                    }
                }
            }
        }
        (other, _) => {
            return Err(BackupError::Usage(format!(
                "{url}: unknown encryption {other:?} in config"
            )));
        }
    };
    config.check_mac(&keys.naming)?;
    Ok(Repository {
        store,
        config: Arc::new(config),
        keys,
    })
}

/// Tries every key file with the caller's identities or passphrase.
async fn unwrap_key_file(store: &Store, url: &str, access: &Access) -> Result<KeyFile> {
    let passphrase_identity;
    let identities: Vec<&dyn age::Identity> = match access {
        Access::Identities(ids) => ids
            .iter()
            .map(|i| i.as_ref() as &dyn age::Identity)
            .collect(),
        Access::Passphrase(p) => {
            passphrase_identity = age::scrypt::Identity::new(p.clone());
            vec![&passphrase_identity as &dyn age::Identity]
        }
        _ => unreachable!("only readers unwrap key files"),
    };
    for listed in store.list("keys").await? {
        let stored = store.get(&listed.name).await?;
        match decrypt_with(&identities, &stored) {
            Ok(plain) => {
                return serde_json::from_slice(&plain).map_err(|e| {
                    BackupError::damaged(&listed.name, format!("not a key file: {e}"))
                });
            }
            Err(age::DecryptError::NoMatchingKeys) | Err(age::DecryptError::DecryptionFailed) => {
                continue;
            }
            Err(e) => {
                // A passphrase tried on another passphrase's key file fails its header MAC.
                if matches!(e, age::DecryptError::InvalidMac) {
                    continue;
                }
                return Err(BackupError::damaged(&listed.name, e));
            }
        }
    }
    Err(BackupError::Key(format!(
        "{url}: none of the repository's key files opens with the identity or passphrase given"
    )))
}
