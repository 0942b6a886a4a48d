//! What the archiver learns of a source server before archiving: its name in the
//! repository (`binlog/<source>/`, `locks/unique-binlog-<source>`) and whether the account
//! may do what archiving needs, said plainly when it may not.
//!
//! The name: MySQL's `server_uuid` (made once per data directory, unique by design).
//! MariaDB has none, so there it is `<hostname>-<port>-<server_id>` (`@@hostname`,
//! `@@port`, `@@server_id`): stable while the server keeps its host name, port and
//! server id, and unique as long as no two servers share all three (servers that
//! replicate to each other must differ in server_id anyway). `rbackup binlog --source`
//! names it explicitly when that does not hold.
//!
//! Not for: the stream itself (`stream`), storage.

use crate::binlog::ArchiveError;
use crate::binlog::stream::connect;
use crate::client::options::ConnectionOptions;
use crate::client::wire::WireError;

/// What the archiver's account needs, for error messages.
pub const PRIVILEGES: &str = "the archiver's account needs REPLICATION SLAVE, BINLOG MONITOR \
     and REPLICATION MASTER ADMIN on MariaDB 10.5 and later (REPLICATION SLAVE and \
     REPLICATION CLIENT on MySQL and older MariaDB), e.g. GRANT REPLICATION SLAVE, BINLOG \
     MONITOR, REPLICATION MASTER ADMIN ON *.* TO 'rbackup'@'localhost'";

/// A source server, as the archiver names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// The server's identity, and the default name of its archive in the repository
    /// (`--source` names it otherwise). Recorded in every segment and every backup's
    /// snapshot, which is how a restore pairs backups with archives.
    pub name: String,
    /// How to name the server in messages ("localhost via /run/mysqld.sock").
    pub server: String,
}

/// Keeps what a name component may hold (see `backup::segments::valid_component`).
pub fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.trim_start_matches('.').chars().take(200).collect()
}

fn denied(server: &str, context: &str, e: WireError) -> ArchiveError {
    match e {
        WireError::Server {
            code: 1227 | 1142 | 1044 | 1045,
            ..
        } => ArchiveError::Server {
            server: server.to_string(),
            context: context.to_string(),
            message: format!("{e}: {PRIVILEGES}"),
        },
        WireError::Io(_) | WireError::Connect(_) => ArchiveError::Connection {
            server: server.to_string(),
            message: format!("{context}: {e}"),
        },
        e => ArchiveError::Server {
            server: server.to_string(),
            context: context.to_string(),
            message: e.to_string(),
        },
    }
}

/// The query of a server's identity (one value, made a name by `sanitize`): MySQL's
/// `server_uuid`; on MariaDB `<hostname>-<port>-<server_id>`. Needs no privilege, so a
/// backup's account can read it too (`rbackup backup` records it).
pub fn identity_sql(mariadb: bool) -> &'static str {
    if mariadb {
        "SELECT CONCAT(@@hostname, '-', @@port, '-', @@server_id)"
    } else {
        "SELECT @@server_uuid"
    }
}

/// Connects once: checks the privileges archiving needs (the statements it runs, and
/// REPLICATION SLAVE in SHOW GRANTS, since the dump itself cannot be tried without side
/// effects) and reads the source's name.
pub async fn identify(opts: &ConnectionOptions) -> Result<SourceInfo, ArchiveError> {
    let (mut conn, server, dialect) = connect(opts).await?;
    conn.query_all("SHOW BINARY LOGS")
        .await
        .map_err(|e| denied(&server, "listing the binary logs (SHOW BINARY LOGS)", e))?;
    conn.query_all(dialect.replica_hosts_sql())
        .await
        .map_err(|e| denied(&server, "listing the replicas", e))?;
    let (_, rows) = conn
        .query_all("SHOW GRANTS")
        .await
        .map_err(|e| denied(&server, "reading the account's grants", e))?;
    // Only whether a grant is there is looked at: a grant line may hold a password hash.
    let grants: Vec<String> = rows
        .iter()
        .filter_map(|r| r.first().cloned().flatten())
        .map(|b| String::from_utf8_lossy(&b).to_ascii_uppercase())
        .collect();
    let global = |g: &String| g.contains(" ON *.* ");
    let replication = grants.iter().any(|g| {
        global(g)
            && (g.contains("ALL PRIVILEGES")
                || g.contains("REPLICATION SLAVE")
                || g.contains("REPLICATION REPLICA"))
    });
    // A role's grants are not in the lines of the account: leave those to the server.
    let roles = grants.iter().any(|g| !g.contains(" ON "));
    if !replication && !roles {
        return Err(ArchiveError::Server {
            server,
            context: "checking privileges".into(),
            message: format!("the account has no REPLICATION SLAVE privilege: {PRIVILEGES}"),
        });
    }
    let (_, rows) = conn
        .query_all(identity_sql(dialect.is_mariadb()))
        .await
        .map_err(|e| denied(&server, "reading the server's identity", e))?;
    conn.close().await;
    let raw = rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let name = sanitize(&raw);
    if name.is_empty() {
        return Err(ArchiveError::Server {
            server,
            context: "reading the server's identity".into(),
            message: "empty; name the source with --source".into(),
        });
    }
    Ok(SourceInfo { name, server })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_only_safe_characters() {
        assert_eq!(sanitize("db1.example.com-3306-1"), "db1.example.com-3306-1");
        assert_eq!(sanitize("../host name/x-0-1"), "_host_name_x-0-1");
    }
}
