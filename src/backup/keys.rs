//! The repository's secrets and the age encryption of whole objects (REPOSITORY.md,
//! "Keys"): the naming key (blob IDs, the chunker's seed, the config MAC), the repository
//! identity (decrypts everything) and its public recipient (encrypts everything), key
//! files that wrap both for readers, and the writer key that lets a host add backups
//! without being able to read any.
//!
//! What a caller holds is an `Access`; opening a repository turns it into `Keys`, which
//! hold a recipient (always, for an encrypted repository) and an identity (only for a
//! reader). `Keys::decrypt` without an identity is an error that says why.
//!
//! Not for: storage, or which object is encrypted how (the object modules decide).

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::str::FromStr;

use age::secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::error::{BackupError, Result};

/// The ID of a blob: keyed BLAKE3 of its plaintext under the naming key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId(pub [u8; 32]);

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", &hex::encode(self.0)[..16])
    }
}

impl FromStr for BlobId {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let mut id = [0u8; 32];
        hex::decode_to_slice(s, &mut id).map_err(|e| format!("bad ID {s:?}: {e}"))?;
        Ok(BlobId(id))
    }
}

/// The storage ID of an object: unkeyed BLAKE3 of its stored bytes, 64 hex digits.
pub fn storage_id(stored: &[u8]) -> String {
    blake3::hash(stored).to_hex().to_string()
}

/// The 32-byte secret that names blobs. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct NamingKey([u8; 32]);

impl fmt::Debug for NamingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NamingKey(***)")
    }
}

impl NamingKey {
    pub fn generate() -> NamingKey {
        // An age identity is 32 random bytes from the OS; its bytes serve as a fresh key
        // without another random-number crate.
        let identity = age::x25519::Identity::generate();
        let secret = identity.to_string();
        NamingKey(blake3::derive_key(
            "rbackup v1 naming key from fresh randomness",
            secret.expose_secret().as_bytes(),
        ))
    }

    pub fn from_hex(s: &str) -> Result<NamingKey> {
        let mut key = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut key)
            .map_err(|_| BackupError::Key("a naming key is 64 hex digits".into()))?;
        Ok(NamingKey(key))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The blob ID of `plaintext`.
    pub fn blob_id(&self, plaintext: &[u8]) -> BlobId {
        BlobId(*blake3::keyed_hash(&self.0, plaintext).as_bytes())
    }

    /// The seed XORed into the chunker's gear table.
    pub fn chunker_seed(&self) -> u64 {
        let k = blake3::derive_key("rbackup v1 chunker seed", &self.0);
        u64::from_le_bytes(k[..8].try_into().expect("8 bytes"))
    }

    /// MAC of a snapshot's canonical bytes: age does not say who encrypted, and the
    /// repository recipient is public (in `config`), so without it anyone who can put an
    /// object could add a snapshot (say an empty one dated 2099 that `latest` would pick).
    pub fn snapshot_mac(&self, canonical: &[u8]) -> String {
        let k = blake3::derive_key("rbackup v1 snapshot mac", &self.0);
        blake3::keyed_hash(&k, canonical).to_hex().to_string()
    }

    /// The name of the marker `copy` leaves in this (destination) repository once it has
    /// copied snapshot `snapshot` of repository `source_repository`: `copies/<hex>`, a
    /// keyed hash, so that a writer can tell what it copied without decrypting anything
    /// and a reader of the bucket learns nothing from the name.
    pub fn copy_marker(&self, source_repository: &str, snapshot: &str) -> String {
        let k = blake3::derive_key("rbackup v1 copy marker", &self.0);
        let text = format!("{source_repository}/{snapshot}");
        format!(
            "copies/{}",
            blake3::keyed_hash(&k, text.as_bytes()).to_hex()
        )
    }

    /// MAC of a binlog segment's or gap's header (REPOSITORY.md, "Binlog segments"): as
    /// for snapshots, only a holder of the naming key can add a segment a restore replays.
    pub fn binlog_mac(&self, canonical: &[u8]) -> String {
        let k = blake3::derive_key("rbackup v1 binlog mac", &self.0);
        blake3::keyed_hash(&k, canonical).to_hex().to_string()
    }

    /// MAC of a drill record's canonical bytes (REPOSITORY.md, "Drill records"): as for
    /// snapshots, so that whoever can put objects cannot add a "passed" drill.
    pub fn drill_mac(&self, canonical: &[u8]) -> String {
        let k = blake3::derive_key("rbackup v1 drill mac", &self.0);
        blake3::keyed_hash(&k, canonical).to_hex().to_string()
    }

    /// MAC of an archiver's heartbeat (REPOSITORY.md, "Archiver heartbeats"): whoever can
    /// only put objects cannot make a stopped archiver look caught up.
    pub fn heartbeat_mac(&self, canonical: &[u8]) -> String {
        let k = blake3::derive_key("rbackup v1 heartbeat mac", &self.0);
        blake3::keyed_hash(&k, canonical).to_hex().to_string()
    }

    /// MAC of the config's canonical bytes.
    pub fn config_mac(&self, canonical: &[u8]) -> String {
        let k = blake3::derive_key("rbackup v1 config mac", &self.0);
        blake3::keyed_hash(&k, canonical).to_hex().to_string()
    }
}

/// What the user holds to open a repository.
pub enum Access {
    /// Age identities (`--identity-file`): a reader.
    Identities(Vec<Box<dyn age::Identity + Send + Sync>>),
    /// A passphrase (`--passphrase-file`): a reader.
    Passphrase(SecretString),
    /// A writer key: can add backups, cannot read.
    Writer(WriterKey),
    /// Nothing: enough only for a repository made with `--no-encryption`.
    None,
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Identities(_) => "Access::Identities(***)",
            Access::Passphrase(_) => "Access::Passphrase(***)",
            Access::Writer(_) => "Access::Writer(***)",
            Access::None => "Access::None",
        })
    }
}

fn read_secret_file(path: &Path, what: &str) -> Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|e| {
            BackupError::Key(format!("{}: cannot read the {what}: {e}", path.display()))
        })?;
    Ok(text)
}

impl Access {
    /// Identities from an age identity file (`AGE-SECRET-KEY-1…` lines).
    pub fn identity_file(path: &Path) -> Result<Access> {
        let text = read_secret_file(path, "identity file")?;
        let ids = age::IdentityFile::from_buffer(text.as_bytes())
            .and_then(|f| {
                f.into_identities()
                    .map_err(|e| std::io::Error::other(e.to_string()))
            })
            .map_err(|e| {
                BackupError::Key(format!("{}: not an age identity file: {e}", path.display()))
            })?;
        if ids.is_empty() {
            return Err(BackupError::Key(format!(
                "{}: no identity in the file",
                path.display()
            )));
        }
        Ok(Access::Identities(ids))
    }

    /// A passphrase: the file's first line.
    pub fn passphrase_file(path: &Path) -> Result<Access> {
        let text = read_secret_file(path, "passphrase file")?;
        let line = text.lines().next().unwrap_or("");
        if line.is_empty() {
            return Err(BackupError::Key(format!(
                "{}: the passphrase file is empty",
                path.display()
            )));
        }
        Ok(Access::Passphrase(SecretString::from(line.to_string())))
    }

    pub fn writer_key_file(path: &Path) -> Result<Access> {
        let text = read_secret_file(path, "writer key file")?;
        WriterKey::parse(&text)
            .map(Access::Writer)
            .map_err(|e| BackupError::Key(format!("{}: {e}", path.display())))
    }
}

/// What a writer needs: repository ID, repository recipient, naming key.
#[derive(Clone, Debug)]
pub struct WriterKey {
    pub repository_id: String,
    pub recipient: String,
    pub naming: NamingKey,
}

const WRITER_KEY_TAG: &str = "RBACKUP-WRITER-KEY-1";

impl WriterKey {
    pub fn to_text(&self) -> String {
        format!(
            "# rbackup writer key: adds backups to repository {}, cannot read them. Keep it secret.\n{WRITER_KEY_TAG} {} {} {}\n",
            self.repository_id,
            self.repository_id,
            self.recipient,
            self.naming.to_hex()
        )
    }

    pub fn parse(text: &str) -> std::result::Result<WriterKey, String> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(WRITER_KEY_TAG))
            .ok_or_else(|| format!("not an rbackup writer key (no {WRITER_KEY_TAG} line)"))?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != 4 {
            return Err("a writer key line has 4 fields".into());
        }
        age::x25519::Recipient::from_str(fields[2])
            .map_err(|e| format!("bad recipient in the writer key: {e}"))?;
        let naming = NamingKey::from_hex(fields[3]).map_err(|e| e.to_string())?;
        Ok(WriterKey {
            repository_id: fields[1].to_string(),
            recipient: fields[2].to_string(),
            naming,
        })
    }
}

/// The plaintext of a key file.
#[derive(Serialize, Deserialize)]
pub(crate) struct KeyFile {
    pub version: u32,
    pub repository_id: String,
    pub identity: String,
    pub naming_key: String,
}

/// The keys of an opened repository.
#[derive(Clone)]
pub struct Keys {
    pub naming: NamingKey,
    /// `None` for a repository without encryption.
    pub recipient: Option<age::x25519::Recipient>,
    /// `None` for a writer (and without encryption).
    pub identity: Option<age::x25519::Identity>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Keys(encrypted: {}, reader: {})",
            self.recipient.is_some(),
            self.identity.is_some()
        )
    }
}

impl Keys {
    pub fn encrypted(&self) -> bool {
        self.recipient.is_some()
    }

    /// True when these keys can decrypt (a reader, or no encryption).
    pub fn can_read(&self) -> bool {
        self.recipient.is_none() || self.identity.is_some()
    }

    /// Encrypts `plaintext` whole to the repository recipient (as is without encryption).
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        match &self.recipient {
            None => plaintext.to_vec(),
            Some(r) => encrypt_to(&[r as &dyn age::Recipient], plaintext)
                .expect("encrypting to an X25519 recipient in memory cannot fail"),
        }
    }

    /// Decrypts a whole object; an error names it.
    pub fn decrypt(&self, object: &str, stored: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.decrypt_into(object, stored, &mut out)?;
        Ok(out)
    }

    /// `decrypt` into `out`, replacing what it held (its allocation, and the bytes it
    /// held, reused: a buffer kept from object to object is not zeroed again). On an
    /// error `out` holds an unspecified part of the plaintext.
    pub fn decrypt_into(&self, object: &str, stored: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if self.recipient.is_none() {
            out.clear();
            out.extend_from_slice(stored);
            return Ok(());
        }
        let identity = self.identity.as_ref().ok_or_else(|| {
            BackupError::Key(format!(
                "{object}: reading needs a reader key (--identity-file or --passphrase-file); a writer key cannot decrypt"
            ))
        })?;
        decrypt_with_into(&[identity as &dyn age::Identity], stored, out)
            .map_err(|e| BackupError::damaged(object, format!("cannot decrypt: {e}")))
    }
}

/// Age-encrypts `plaintext` to `recipients`.
pub(crate) fn encrypt_to(
    recipients: &[&dyn age::Recipient],
    plaintext: &[u8],
) -> std::result::Result<Vec<u8>, String> {
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().copied()).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(plaintext.len() + 256);
    let mut w = encryptor.wrap_output(&mut out).map_err(|e| e.to_string())?;
    w.write_all(plaintext).map_err(|e| e.to_string())?;
    w.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

/// Decrypts an age file with any of `identities`.
pub(crate) fn decrypt_with(
    identities: &[&dyn age::Identity],
    stored: &[u8],
) -> std::result::Result<Vec<u8>, age::DecryptError> {
    let mut out = Vec::new();
    decrypt_with_into(identities, stored, &mut out)?;
    Ok(out)
}

/// `decrypt_with` into `out`, replacing what it held. The plaintext is shorter than the
/// stored bytes (age's header and tags): it is read into `out` grown to their length,
/// zeroed only past what `out` held before (`read_to_end` would zero its spare room on
/// every call), then cut to the plaintext's length.
fn decrypt_with_into(
    identities: &[&dyn age::Identity],
    stored: &[u8],
    out: &mut Vec<u8>,
) -> std::result::Result<(), age::DecryptError> {
    let decryptor = age::Decryptor::new_buffered(stored)?;
    let mut r = decryptor.decrypt(identities.iter().copied())?;
    out.resize(stored.len(), 0);
    let mut n = 0;
    let read = loop {
        if n == out.len() {
            // Not an age file's proportions; read on to the end all the same.
            out.truncate(n);
            break r.read_to_end(out).map(|_| ());
        }
        match r.read(&mut out[n..]) {
            Ok(0) => {
                out.truncate(n);
                break Ok(());
            }
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                out.truncate(n);
                break Err(e);
            }
        }
    };
    Ok(read?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader_and_writer() -> (Keys, Keys) {
        let identity = age::x25519::Identity::generate();
        let naming = NamingKey::generate();
        let reader = Keys {
            naming: naming.clone(),
            recipient: Some(identity.to_public()),
            identity: Some(identity.clone()),
        };
        let writer = Keys {
            naming,
            recipient: Some(identity.to_public()),
            identity: None,
        };
        (reader, writer)
    }

    #[test]
    fn blob_ids_are_keyed_and_stable() {
        let a = NamingKey::from_hex(&"11".repeat(32)).unwrap();
        let b = NamingKey::from_hex(&"22".repeat(32)).unwrap();
        let data = b"INSERT INTO t VALUES (1,'x');";
        assert_eq!(a.blob_id(data), a.blob_id(data));
        assert_ne!(a.blob_id(data), b.blob_id(data));
        // Not the plain hash: a name computed without the key reveals nothing.
        assert_ne!(a.blob_id(data).0, *blake3::hash(data).as_bytes());
        let id = a.blob_id(data);
        assert_eq!(id.to_string().parse::<BlobId>().unwrap(), id);
        assert_ne!(a.chunker_seed(), b.chunker_seed());
    }

    #[test]
    fn encryption_round_trips_for_a_reader() {
        let (reader, writer) = reader_and_writer();
        let plain = b"the rows of a table".repeat(1000);
        let stored = writer.encrypt(&plain);
        assert_ne!(&stored[..], &plain[..]);
        assert!(stored.starts_with(b"age-encryption.org/v1\n"));
        assert_eq!(reader.decrypt("data/x", &stored).unwrap(), plain);
    }

    #[test]
    fn a_writer_cannot_decrypt_even_what_it_wrote() {
        let (_, writer) = reader_and_writer();
        let stored = writer.encrypt(b"secret rows");
        let e = writer.decrypt("data/ab/abc", &stored).unwrap_err();
        assert!(matches!(e, BackupError::Key(_)), "{e}");
        assert!(e.to_string().contains("needs a reader key"), "{e}");
    }

    #[test]
    fn another_identity_is_refused_and_a_flipped_byte_is_damage() {
        let (reader, writer) = reader_and_writer();
        let (other, _) = reader_and_writer();
        let mut stored = writer.encrypt(b"rows");
        let e = other.decrypt("snapshots/1", &stored).unwrap_err();
        assert!(
            e.is_damage() && e.to_string().contains("snapshots/1"),
            "{e}"
        );
        let last = stored.len() - 1;
        stored[last] ^= 1;
        let e = reader.decrypt("data/ab/abc", &stored).unwrap_err();
        assert!(e.to_string().starts_with("data/ab/abc: damaged"), "{e}");
    }

    #[test]
    fn writer_keys_round_trip_as_text() {
        let identity = age::x25519::Identity::generate();
        let key = WriterKey {
            repository_id: "abc".into(),
            recipient: identity.to_public().to_string(),
            naming: NamingKey::generate(),
        };
        let parsed = WriterKey::parse(&key.to_text()).unwrap();
        assert_eq!(parsed.recipient, key.recipient);
        assert_eq!(parsed.naming, key.naming);
        assert!(!format!("{key:?}").contains(&key.naming.to_hex()));
        assert!(WriterKey::parse("garbage").is_err());
    }
}
