//! TLS and protocol compression against a real server with its own certificate authority:
//! `--ssl-mode` DISABLED / PREFERRED / REQUIRED / VERIFY_CA / VERIFY_IDENTITY, `--ssl-ca`,
//! and `-C/--compress`. The account used requires TLS, so a plain connection is refused. Each
//! dump also says (`-v`) which client served it: TLS is rdump's own text-protocol client's
//! too, compression only mysql_async's.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Server, ServerOptions};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it; returns nothing, writes
/// ca.pem, server.pem, server-key.pem (and other-ca.pem, a CA that signed nothing).
fn make_certificates(dir: &Path) {
    for ca in ["ca", "other-ca"] {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                &format!("{ca}-key.pem"),
                "-out",
                &format!("{ca}.pem"),
                "-subj",
                &format!("/CN=rdump test {ca}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
    }
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server-key.pem",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.pem",
            "-extfile",
            "ext.cnf",
        ],
    );
}

struct TlsServer {
    server: Server,
    certs: tempfile::TempDir,
}

fn start_tls_server() -> TlsServer {
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let p = |f: &str| certs.path().join(f).display().to_string();
    let server = Server::start(ServerOptions {
        server_id: 31,
        extra_args: vec![
            format!("--ssl-ca={}", p("ca.pem")),
            format!("--ssl-cert={}", p("server.pem")),
            format!("--ssl-key={}", p("server-key.pem")),
            // Reachable as 127.0.0.2 too, a name the certificate does not have.
            "--bind-address=0.0.0.0".to_string(),
        ],
        ..Default::default()
    });
    server.sql(
        "CREATE DATABASE app; USE app; CREATE TABLE app.t (id INT PRIMARY KEY, v TEXT); \
         INSERT INTO app.t SELECT seq, REPEAT('compressible ', 50) FROM app.seq_1_to_2000; \
         CREATE USER 'tls'@'127.0.0.%' IDENTIFIED BY 'tls-pw' REQUIRE SSL; \
         GRANT ALL ON *.* TO 'tls'@'127.0.0.%'; \
         CREATE USER 'any'@'127.0.0.%' IDENTIFIED BY 'any-pw'; \
         GRANT ALL ON *.* TO 'any'@'127.0.0.%';",
    );
    TlsServer { server, certs }
}

fn rdump_tcp(t: &TlsServer, extra: &[&str]) -> Output {
    rdump_as(t, "127.0.0.1", "tls", extra)
}

/// rdump -v over TCP to `host` as `user` (whose password is `<user>-pw`).
fn rdump_as(t: &TlsServer, host: &str, user: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rdump"))
        .arg("--no-defaults")
        .args(["--protocol=tcp", &format!("-h{host}")])
        .arg(format!("-P{}", t.server.port()))
        .args([&format!("-u{user}"), &format!("-p{user}-pw"), "-v", "app"])
        .args(extra)
        .output()
        .unwrap()
}

const LEAN: &str = "(rdump's text-protocol client)";
const DRIVER: &str = "(mysql_async)";

/// Asserts that the dump's session ran on `client` (`LEAN` or `DRIVER`), as `-v` says.
fn assert_client(out: &Output, client: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("-- Connected to "))
        .unwrap_or_else(|| panic!("{what}: no 'Connected to' line in: {stderr}"));
    assert!(line.ends_with(client), "{what}: {line}");
}

/// A `--where` that holds only on an encrypted connection, as the server sees it.
const WHERE_ENCRYPTED: &str = "--where=(SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS \
     WHERE VARIABLE_NAME = 'Ssl_cipher') <> ''";

fn assert_dumped(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(
        dump.contains("INSERT INTO `t` VALUES (1,'compressible "),
        "{what}"
    );
    assert!(dump.contains("-- Dump completed"), "{what}");
}

#[test]
fn tls_modes_against_an_account_that_requires_tls() {
    let t = start_tls_server();
    let ca = t.certs.path().join("ca.pem").display().to_string();
    let other_ca = t.certs.path().join("other-ca.pem").display().to_string();

    let plain = rdump_tcp(&t, &["--ssl-mode=DISABLED"]);
    assert_eq!(
        plain.status.code(),
        Some(2),
        "a plain connection must be refused"
    );
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(
        stderr.contains("Access denied") && stderr.contains("127.0.0.1"),
        "{stderr}"
    );
    assert!(!stderr.contains("tls-pw"), "password leaked: {stderr}");

    let cases: [(&str, &str, Vec<String>); 5] = [
        (
            "PREFERRED (default) uses TLS when offered",
            "127.0.0.1",
            vec![],
        ),
        ("REQUIRED", "127.0.0.1", vec!["--ssl-mode=REQUIRED".into()]),
        (
            "VERIFY_CA with the right CA",
            "127.0.0.1",
            vec!["--ssl-mode=VERIFY_CA".into(), format!("--ssl-ca={ca}")],
        ),
        (
            "VERIFY_CA with the right CA, a host name the certificate does not have",
            "127.0.0.2",
            vec!["--ssl-mode=VERIFY_CA".into(), format!("--ssl-ca={ca}")],
        ),
        (
            "VERIFY_IDENTITY with the right CA and host",
            "127.0.0.1",
            vec![
                "--ssl-mode=VERIFY_IDENTITY".into(),
                format!("--ssl-ca={ca}"),
            ],
        ),
    ];
    for (what, host, args) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = rdump_as(&t, host, "tls", &args);
        assert_dumped(&out, what);
        assert_client(&out, LEAN, what);
    }

    let wrong = rdump_tcp(
        &t,
        &["--ssl-mode=VERIFY_CA", &format!("--ssl-ca={other_ca}")],
    );
    assert_eq!(
        wrong.status.code(),
        Some(2),
        "a certificate from another CA must be refused"
    );
    assert!(!String::from_utf8_lossy(&wrong.stdout).contains("Dump completed"));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(stderr.contains("certificate"), "{stderr}");

    let wrong_name = rdump_as(
        &t,
        "127.0.0.2",
        "tls",
        &["--ssl-mode=VERIFY_IDENTITY", &format!("--ssl-ca={ca}")],
    );
    assert_eq!(
        wrong_name.status.code(),
        Some(2),
        "a certificate for another name must be refused under VERIFY_IDENTITY: {}",
        String::from_utf8_lossy(&wrong_name.stderr)
    );
    assert!(!String::from_utf8_lossy(&wrong_name.stdout).contains("Dump completed"));
    let stderr = String::from_utf8_lossy(&wrong_name.stderr);
    assert!(stderr.contains("not valid for name"), "{stderr}");
}

#[test]
fn preferred_over_tcp_encrypts_on_the_lean_client() {
    let t = start_tls_server();
    // An account that does not require TLS: only the client's choice encrypts.
    let preferred = rdump_as(&t, "127.0.0.1", "any", &[WHERE_ENCRYPTED]);
    assert_dumped(&preferred, "PREFERRED, the rows read over TLS");
    assert_client(&preferred, LEAN, "PREFERRED");

    let disabled = rdump_as(
        &t,
        "127.0.0.1",
        "any",
        &["--ssl-mode=DISABLED", WHERE_ENCRYPTED],
    );
    assert!(disabled.status.success());
    assert_client(&disabled, LEAN, "DISABLED");
    let dump = String::from_utf8_lossy(&disabled.stdout);
    assert!(
        dump.contains("-- Dump completed") && !dump.contains("INSERT INTO `t`"),
        "DISABLED: the connection must be plain, so no row is dumped"
    );
}

/// rdump over TCP to a server without TLS, as its own account.
fn rdump_plain_server(server: &Server, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rdump"))
        .arg("--no-defaults")
        .args(["--protocol=tcp", "-h127.0.0.1"])
        .arg(format!("-P{}", server.port()))
        .arg(format!("-u{}", server.user()))
        .arg(format!("-p{}", server.password()))
        .args(["-v", "--no-data", "mysql"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_server_without_tls_is_refused_unless_preferred() {
    let plain = Server::start(ServerOptions {
        server_id: 32,
        ..Default::default()
    });
    for mode in ["REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"] {
        let out = rdump_plain_server(&plain, &[&format!("--ssl-mode={mode}")]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("Dump completed"),
            "{mode}"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("SSL"), "{mode}: {stderr}");
    }
    let out = rdump_plain_server(&plain, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_client(&out, LEAN, "PREFERRED, plain as the server has no TLS");
}

#[test]
fn compressed_protocol_dumps_the_same_bytes() {
    let t = start_tls_server();
    let plain = rdump_tcp(&t, &["--skip-dump-date"]);
    let compressed = rdump_tcp(&t, &["--skip-dump-date", "-C"]);
    assert_dumped(&compressed, "--compress");
    assert_client(&plain, LEAN, "TLS");
    assert_client(&compressed, DRIVER, "--compress");
    assert_eq!(plain.stdout, compressed.stdout);
}

/// Over a unix socket no client encrypts (the bytes never leave the host, as the mysql
/// clients count it): every mode connects, on the lean client. (mysql_async, asked for TLS
/// there, sent the SSLRequest and then broke the handshake: "Packets out of sync".)
#[test]
fn a_unix_socket_is_never_encrypted() {
    let t = start_tls_server();
    for mode in ["PREFERRED", "REQUIRED", "VERIFY_IDENTITY"] {
        let out = Command::new(env!("CARGO_BIN_EXE_rdump"))
            .arg("--no-defaults")
            .arg(format!("--socket={}", t.server.socket().display()))
            .arg(format!("-u{}", t.server.user()))
            .arg(format!("-p{}", t.server.password()))
            .arg(format!("--ssl-mode={mode}"))
            .args(["-v", "app"])
            .output()
            .unwrap();
        assert_dumped(&out, mode);
        assert_client(&out, LEAN, mode);
    }
}

/// A `--where` that holds only when the server says the session uses `variable` = `value`.
fn where_session_status(variable: &str, value: &str) -> String {
    format!(
        "--where=(SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS \
         WHERE VARIABLE_NAME = '{variable}') = '{value}'"
    )
}

/// `--tls-version` and `--ssl-cipher` (OpenSSL or IANA names) limit what TLS may use, as
/// with the mysql clients: the lean client offers only those, and the server's session shows
/// the version and cipher chosen; a list rdump's TLS cannot meet is refused before
/// connecting. Through mysql_async (`--compress`) what was negotiated is checked instead.
#[test]
fn tls_version_and_ssl_cipher_limit_the_negotiated_tls() {
    let t = start_tls_server();
    let ca = format!("--ssl-ca={}", t.certs.path().join("ca.pem").display());
    let dumped_rows = |out: &Output| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("INSERT INTO `t`"))
            .count()
    };
    let version12 = where_session_status("Ssl_version", "TLSv1.2");
    let out = rdump_tcp(&t, &[&ca, "--tls-version=TLSv1.2", &version12]);
    assert_dumped(&out, "--tls-version=TLSv1.2");
    assert_client(&out, LEAN, "--tls-version");
    let version13 = where_session_status("Ssl_version", "TLSv1.3");
    let out = rdump_tcp(&t, &[&ca, "--tls-version=TLSv1.3", &version13]);
    assert_dumped(&out, "--tls-version=TLSv1.3");
    assert!(dumped_rows(&out) > 0);

    let cipher = where_session_status("Ssl_cipher", "ECDHE-RSA-AES128-GCM-SHA256");
    let out = rdump_tcp(
        &t,
        &[
            &ca,
            "--tls-version=TLSv1.2",
            "--ssl-cipher=ECDHE-RSA-AES128-GCM-SHA256",
            &cipher,
        ],
    );
    assert_dumped(&out, "--ssl-cipher (OpenSSL name)");
    let out = rdump_tcp(
        &t,
        &[
            "--tls-version=TLSv1.2",
            "--ssl-cipher=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            &cipher,
        ],
    );
    assert_dumped(&out, "--ssl-cipher (IANA name)");

    // Nothing rdump's TLS can offer: refused, never plain text.
    let out = rdump_tcp(&t, &["--tls-version=TLSv1.1"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = rdump_tcp(&t, &["--ssl-cipher=DES-CBC3-SHA"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ssl-cipher"));

    // mysql_async cannot be told: a session outside the limits is refused after the fact.
    let out = rdump_tcp(&t, &["-C", "--tls-version=TLSv1.3"]);
    assert_dumped(&out, "--compress --tls-version=TLSv1.3");
    let out = rdump_tcp(&t, &["-C", "--tls-version=TLSv1.2"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside --tls-version"));
}
