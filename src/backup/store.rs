//! The object store behind a repository URL, through the `object_store` crate: a local
//! directory (`/path`, `file:///path`) or S3-compatible storage (`s3://bucket/prefix`),
//! with one code path above this module. S3 credentials, region and endpoint come from
//! the environment as the AWS tools read them (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`); plain
//! HTTP is allowed only for a loopback endpoint. TLS is reqwest's rustls with the ring
//! provider, as the rest of the project; retries (with backoff) are object_store's.
//!
//! Every call returns errors that name the object; "not found" becomes
//! `BackupError::Missing`. Names are relative to the repository (`data/ab/ab…`).
//!
//! Not for: what objects mean (see the other modules).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{
    BackoffConfig, ObjectStore, PutMode, PutOptions, PutPayload, RetryConfig, UpdateVersion,
};

use super::error::{BackupError, Result};

/// Where a repository is, parsed from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl Location {
    pub fn parse(url: &str) -> Result<Location> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(BackupError::Usage(format!(
                    "{url}: an S3 repository URL is s3://bucket[/prefix]"
                )));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        let path = url.strip_prefix("file://").unwrap_or(url);
        if path.is_empty() || path.contains("://") {
            return Err(BackupError::Usage(format!(
                "{url}: a repository is a path, file:///path or s3://bucket/prefix"
            )));
        }
        Ok(Location::Local(PathBuf::from(path)))
    }
}

/// S3 settings given explicitly (a config file, tests) instead of the environment.
#[derive(Clone, Default)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "S3Settings(endpoint: {:?}, region: {:?}, credentials: ***)",
            self.endpoint, self.region
        )
    }
}

/// Tuning of the storage client (tests shorten the retries).
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Overrides of the environment's S3 settings.
    pub s3: S3Settings,
    /// How long object_store keeps retrying a failing request (default: its 3 minutes).
    pub retry_timeout: Option<Duration>,
    /// How many times it retries (default: its 10).
    pub max_retries: Option<usize>,
}

/// A repository's storage.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    /// The URL, for messages (it never holds credentials).
    url: String,
    local: bool,
    /// The directory of a local repository.
    local_root: Option<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.url)
    }
}

/// A listed object: its name relative to the repository, size and what the store says
/// of its version.
#[derive(Debug, Clone)]
pub struct Listed {
    pub name: String,
    pub size: u64,
    pub last_modified: chrono::DateTime<chrono::Utc>,
    pub e_tag: Option<String>,
}

impl Store {
    /// Opens the store at `url`. With `create`, a local directory is made if missing.
    pub fn open(url: &str, options: &StoreOptions, create: bool) -> Result<Store> {
        let location = Location::parse(url)?;
        let usage = |e: &dyn std::fmt::Display| BackupError::Usage(format!("{url}: {e}"));
        let local_root = match &location {
            Location::Local(path) => Some(path.clone()),
            Location::S3 { .. } => None,
        };
        let (inner, local): (Arc<dyn ObjectStore>, bool) = match &location {
            Location::Local(path) => {
                if create {
                    // The repository's root is 0700: object_store makes its files and
                    // folders with the umask's modes (0644, 0755), and in a repository
                    // made with --no-encryption the packs are the data in clear.
                    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(path)
                        .map_err(|e| usage(&e))?;
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
                        .map_err(|e| usage(&e))?;
                }
                if !path.is_dir() {
                    return Err(BackupError::Usage(format!(
                        "{url}: no repository here (not a directory)"
                    )));
                }
                let fs = LocalFileSystem::new_with_prefix(path).map_err(|e| usage(&e))?;
                (Arc::new(fs), true)
            }
            Location::S3 { bucket, prefix } => {
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
                let s3 = &options.s3;
                if let Some(id) = &s3.access_key_id {
                    builder = builder.with_access_key_id(id);
                }
                if let Some(secret) = &s3.secret_access_key {
                    builder = builder.with_secret_access_key(secret);
                }
                if let Some(region) = &s3.region {
                    builder = builder.with_region(region);
                }
                let endpoint = s3
                    .endpoint
                    .clone()
                    .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
                if let Some(endpoint) = endpoint {
                    if endpoint.starts_with("http://") && !is_loopback(&endpoint) {
                        return Err(BackupError::Usage(format!(
                            "AWS_ENDPOINT_URL={endpoint}: plain http is allowed only for a loopback endpoint"
                        )));
                    }
                    builder = builder
                        .with_endpoint(&endpoint)
                        .with_allow_http(endpoint.starts_with("http://"));
                }
                if s3.region.is_none()
                    && std::env::var_os("AWS_REGION").is_none()
                    && std::env::var_os("AWS_DEFAULT_REGION").is_none()
                {
                    builder = builder.with_region("us-east-1");
                }
                let mut retry = RetryConfig::default();
                if let Some(t) = options.retry_timeout {
                    retry.retry_timeout = t;
                    retry.backoff = BackoffConfig {
                        init_backoff: Duration::from_millis(50),
                        max_backoff: t.min(Duration::from_secs(15)),
                        base: 2.0,
                    };
                }
                if let Some(n) = options.max_retries {
                    retry.max_retries = n;
                }
                let s3 = builder.with_retry(retry).build().map_err(|e| usage(&e))?;
                if prefix.is_empty() {
                    (Arc::new(s3), false)
                } else {
                    (Arc::new(PrefixStore::new(s3, prefix.as_str())), false)
                }
            }
        };
        Ok(Store {
            inner,
            url: url.to_string(),
            local,
            local_root,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// True for a local directory (no conditional overwrite there).
    pub fn is_local(&self) -> bool {
        self.local
    }

    /// Makes everything written so far durable before what comes next (the write order
    /// of REPOSITORY.md must hold after a power loss, not only after a crash): for a local
    /// directory, `syncfs` of its filesystem (object_store renames its files into place
    /// without fsync); S3 acknowledges a put only once it is durable, so nothing there.
    pub async fn sync(&self) -> Result<()> {
        let Some(root) = self.local_root.clone() else {
            return Ok(());
        };
        let url = self.url.clone();
        let result = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::os::fd::AsRawFd;
            let dir = std::fs::File::open(&root)?;
            // SAFETY: a valid open descriptor.
            if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r);
        result.map_err(|e| BackupError::Storage {
            object: "(all objects)".into(),
            message: format!("syncing the repository's filesystem: {e} (repository {url})"),
        })
    }

    fn storage_error(&self, name: &str, e: object_store::Error) -> BackupError {
        match e {
            object_store::Error::NotFound { .. } => BackupError::Missing {
                object: name.to_string(),
                file: None,
            },
            e => BackupError::Storage {
                object: name.to_string(),
                message: format!("{e} (repository {})", self.url),
            },
        }
    }

    /// The whole object.
    pub async fn get(&self, name: &str) -> Result<Bytes> {
        let path = ObjectPath::from(name);
        let result = self
            .inner
            .get(&path)
            .await
            .map_err(|e| self.storage_error(name, e))?;
        result
            .bytes()
            .await
            .map_err(|e| self.storage_error(name, e))
    }

    /// Bytes `range` of the object (the caller keeps the range within its size).
    pub async fn get_range(&self, name: &str, range: std::ops::Range<u64>) -> Result<Bytes> {
        self.inner
            .get_range(&ObjectPath::from(name), range)
            .await
            .map_err(|e| self.storage_error(name, e))
    }

    /// The object, or `None` when it does not exist.
    pub async fn get_opt(&self, name: &str) -> Result<Option<Bytes>> {
        match self.get(name).await {
            Ok(b) => Ok(Some(b)),
            Err(BackupError::Missing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the object whole (replacing any object of that name).
    pub async fn put(&self, name: &str, bytes: Bytes) -> Result<()> {
        self.inner
            .put(&ObjectPath::from(name), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| self.storage_error(name, e))
    }

    /// Creates the object only if no object has that name (`If-None-Match: *`).
    /// Returns false when it already exists.
    pub async fn create(&self, name: &str, bytes: Bytes) -> Result<bool> {
        let options = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .inner
            .put_opts(&ObjectPath::from(name), PutPayload::from(bytes), options)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(self.storage_error(name, e)),
        }
    }

    /// Replaces the object only if it is still the version `e_tag` (`If-Match`).
    /// `Ok(None)` when the store cannot do that (a local directory).
    pub async fn replace_if(&self, name: &str, bytes: Bytes, e_tag: &str) -> Result<Option<bool>> {
        let options = PutOptions {
            mode: PutMode::Update(UpdateVersion {
                e_tag: Some(e_tag.to_string()),
                version: None,
            }),
            ..Default::default()
        };
        match self
            .inner
            .put_opts(&ObjectPath::from(name), PutPayload::from(bytes), options)
            .await
        {
            Ok(_) => Ok(Some(true)),
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::NotFound { .. }) => Ok(Some(false)),
            Err(object_store::Error::NotImplemented) => Ok(None),
            Err(e) => Err(self.storage_error(name, e)),
        }
    }

    /// Size, time and version of an object, or `None`.
    pub async fn head(&self, name: &str) -> Result<Option<Listed>> {
        match self.inner.head(&ObjectPath::from(name)).await {
            Ok(meta) => Ok(Some(Listed {
                name: name.to_string(),
                size: meta.size,
                last_modified: meta.last_modified,
                e_tag: meta.e_tag,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.storage_error(name, e)),
        }
    }

    /// Every object under `prefix` (a folder such as `index`), sorted by name.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        let path = ObjectPath::from(prefix);
        let mut listed: Vec<Listed> = self
            .inner
            .list(Some(&path))
            .map_ok(|meta| Listed {
                name: meta.location.to_string(),
                size: meta.size,
                last_modified: meta.last_modified,
                e_tag: meta.e_tag,
            })
            .try_collect()
            .await
            .map_err(|e| self.storage_error(&format!("{prefix}/"), e))?;
        // The local store lists its in-progress uploads too ("name#n"): not objects yet.
        listed.retain(|l| !l.name.contains('#'));
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(listed)
    }

    /// The names of the folders right under `prefix` (`binlog` gives the sources).
    pub async fn list_folders(&self, prefix: &str) -> Result<Vec<String>> {
        let path = ObjectPath::from(prefix);
        let listed = self
            .inner
            .list_with_delimiter(Some(&path))
            .await
            .map_err(|e| self.storage_error(&format!("{prefix}/"), e))?;
        Ok(listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    /// Deletes the object (no error if it is already gone).
    pub async fn delete(&self, name: &str) -> Result<()> {
        match self.inner.delete(&ObjectPath::from(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.storage_error(name, e)),
        }
    }
}

/// True when the endpoint URL's host is a loopback address or `localhost`.
fn is_loopback(endpoint: &str) -> bool {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_local_repository_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        Store::open(root.to_str().unwrap(), &StoreOptions::default(), true).unwrap();
        let mode = std::fs::metadata(&root).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    }

    #[test]
    fn urls_parse_into_locations() {
        assert_eq!(
            Location::parse("s3://b/some/prefix/").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: "some/prefix".into()
            }
        );
        assert_eq!(
            Location::parse("file:///var/backups").unwrap(),
            Location::Local("/var/backups".into())
        );
        assert_eq!(
            Location::parse("repo").unwrap(),
            Location::Local("repo".into())
        );
        assert!(Location::parse("s3://").is_err());
        assert!(Location::parse("gs://x").is_err());
    }

    #[test]
    fn only_loopback_endpoints_count_as_loopback() {
        assert!(is_loopback("http://127.0.0.1:5000"));
        assert!(is_loopback("http://localhost:9000/"));
        assert!(is_loopback("http://[::1]:9000"));
        assert!(!is_loopback("http://10.0.0.1:9000"));
        assert!(!is_loopback("http://example.com"));
    }
}
