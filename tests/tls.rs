//! TLS and protocol compression against a real server with its own certificate authority:
//! `--ssl-mode` DISABLED / PREFERRED / REQUIRED / VERIFY_CA / VERIFY_IDENTITY, `--ssl-ca`,
//! and `-C/--compress`. The account used requires TLS, so a plain connection is refused.

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
        ],
        ..Default::default()
    });
    server.sql(
        "CREATE DATABASE app; USE app; CREATE TABLE app.t (id INT PRIMARY KEY, v TEXT); \
         INSERT INTO app.t SELECT seq, REPEAT('compressible ', 50) FROM app.seq_1_to_2000; \
         CREATE USER 'tls'@'127.0.0.1' IDENTIFIED BY 'tls-pw' REQUIRE SSL; \
         GRANT ALL ON *.* TO 'tls'@'127.0.0.1';",
    );
    TlsServer { server, certs }
}

fn rdump_tcp(t: &TlsServer, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rdump"))
        .arg("--no-defaults")
        .args(["--protocol=tcp", "-h127.0.0.1"])
        .arg(format!("-P{}", t.server.port()))
        .args(["-utls", "-ptls-pw", "app"])
        .args(extra)
        .output()
        .unwrap()
}

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

    assert_dumped(
        &rdump_tcp(&t, &[]),
        "PREFERRED (default) uses TLS when offered",
    );
    assert_dumped(&rdump_tcp(&t, &["--ssl-mode=REQUIRED"]), "REQUIRED");
    assert_dumped(
        &rdump_tcp(&t, &["--ssl-mode=VERIFY_CA", &format!("--ssl-ca={ca}")]),
        "VERIFY_CA with the right CA",
    );
    assert_dumped(
        &rdump_tcp(
            &t,
            &["--ssl-mode=VERIFY_IDENTITY", &format!("--ssl-ca={ca}")],
        ),
        "VERIFY_IDENTITY with the right CA and host",
    );

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
}

#[test]
fn compressed_protocol_dumps_the_same_bytes() {
    let t = start_tls_server();
    let plain = rdump_tcp(&t, &["--skip-dump-date"]);
    let compressed = rdump_tcp(&t, &["--skip-dump-date", "-C"]);
    assert_dumped(&compressed, "--compress");
    assert_eq!(plain.stdout, compressed.stdout);
}
