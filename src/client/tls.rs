//! TLS for the lean client (`wire`): the rustls configuration for an `--ssl-mode`, the
//! same as `conn::ssl_opts` asks of mysql_async. Roots are the certificates of `--ssl-ca`
//! (then no built-in roots) or webpki's; `--ssl-cert`/`--ssl-key` are the client's identity.
//! The server's certificate is checked as the mysql clients do: not at all for REQUIRED and
//! PREFERRED (still a real TLS session), its chain but not its name for VERIFY_CA, both for
//! VERIFY_IDENTITY. Handshake signatures are always verified.
//!
//! Not for: deciding whether to use TLS (`conn`), or the protocol around it (`wire`).

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::client::options::{SslMode, SslOptions, TlsVersion};

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Nothing: REQUIRED and PREFERRED encrypt without verifying.
    Nothing,
    /// The chain up to a trusted root, not the host name (VERIFY_CA).
    Chain,
    /// The chain and the host name (VERIFY_IDENTITY).
    Identity,
}

fn check_for(mode: SslMode) -> Check {
    match mode {
        SslMode::VerifyIdentity => Check::Identity,
        SslMode::VerifyCa => Check::Chain,
        SslMode::Disabled | SslMode::Preferred | SslMode::Required => Check::Nothing,
    }
}

/// The server certificate verifier for one mode. Certificates are checked by webpki as far
/// as the mode asks; the signatures of the handshake always by the provider's algorithms.
#[derive(Debug)]
struct ServerCheck {
    check: Check,
    /// `None` for `Check::Nothing`.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ServerCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if self.check == Check::Chain => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The certificates of a PEM file (several, as a CA bundle has), or of a DER file.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
    if certs.is_empty() && !bytes.is_empty() {
        return Ok(vec![CertificateDer::from(bytes)]);
    }
    if certs.is_empty() {
        return Err(format!("no certificate in {}", path.display()));
    }
    Ok(certs)
}

/// The client configuration for these options. Errors name the file or setting at fault.
pub fn client_config(ssl: &SslOptions) -> Result<Arc<ClientConfig>, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = &ssl.ciphers {
        provider.cipher_suites.retain(|cs| {
            cs.suite()
                .as_str()
                .is_some_and(|n| names.iter().any(|w| w == n))
        });
        if provider.cipher_suites.is_empty() {
            return Err(format!(
                "none of the ciphers of --ssl-cipher ({}) is one rdump's TLS offers",
                names.join(":")
            ));
        }
    }
    let provider = Arc::new(provider);
    let mut roots = RootCertStore::empty();
    match &ssl.ca {
        Some(ca) => {
            for cert in read_certs(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("bad certificate in {}: {e}", ca.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let check = check_for(ssl.mode);
    let webpki = match check {
        Check::Nothing => None,
        Check::Chain | Check::Identity => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| format!("TLS roots: {e}"))?,
        ),
    };
    let verifier = ServerCheck {
        check,
        webpki,
        algorithms: provider.signature_verification_algorithms,
    };
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = match &ssl.tls_versions {
        None => rustls::DEFAULT_VERSIONS.to_vec(),
        Some(v) => v
            .iter()
            .map(|v| match v {
                TlsVersion::Tls12 => &rustls::version::TLS12,
                TlsVersion::Tls13 => &rustls::version::TLS13,
            })
            .collect(),
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("TLS (--tls-version, --ssl-cipher): {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let config = match (&ssl.cert, &ssl.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("cannot read the key {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate {}: {e}", cert.display()))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_check_what_the_mysql_clients_check() {
        assert_eq!(check_for(SslMode::Preferred), Check::Nothing);
        assert_eq!(check_for(SslMode::Required), Check::Nothing);
        assert_eq!(check_for(SslMode::VerifyCa), Check::Chain);
        assert_eq!(check_for(SslMode::VerifyIdentity), Check::Identity);
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_an_error_not_an_empty_trust_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut ssl = SslOptions {
            mode: SslMode::VerifyCa,
            ca: Some(dir.path().join("missing.pem")),
            ..Default::default()
        };
        assert!(client_config(&ssl).unwrap_err().contains("missing.pem"));
        std::fs::write(dir.path().join("empty.pem"), "").unwrap();
        ssl.ca = Some(dir.path().join("empty.pem"));
        assert!(client_config(&ssl).unwrap_err().contains("no certificate"));
    }

    #[test]
    fn without_a_ca_the_built_in_roots_serve() {
        for mode in [
            SslMode::Required,
            SslMode::VerifyCa,
            SslMode::VerifyIdentity,
        ] {
            let ssl = SslOptions {
                mode,
                ..Default::default()
            };
            assert!(client_config(&ssl).is_ok(), "{mode:?}");
        }
    }
}
