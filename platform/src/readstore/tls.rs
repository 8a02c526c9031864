//! TLS to the CQL nodes (client-to-node encryption), with rustls.
//!
//! Why rustls (the driver's `rustls-023` feature) and not OpenSSL: it is
//! already in the build (the registry client uses it), needs no system
//! library, and keeps one TLS stack in the binary.
//!
//! A CA file is required when verifying: CQL clusters almost always run on
//! a private CA, and trusting the public web roots for a database would
//! be the wrong default. Verification can be switched off (a throwaway
//! test node with a self-signed certificate) — loudly, in the docs and in a
//! warning at start.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// What `QS_CQL_TLS_*` asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CqlTlsSettings {
    /// PEM file of the CA(s) that signed the nodes' certificates.
    pub ca_file: Option<PathBuf>,
    /// Check the node's certificate chain and name (default on).
    pub verify: bool,
    /// Client certificate and key (PEM) for nodes that require them
    /// (`require_client_auth: true`).
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// A ready rustls client configuration for the driver.
#[derive(Clone)]
pub struct CqlTls {
    pub(crate) config: Arc<ClientConfig>,
    summary: String,
}

impl fmt::Debug for CqlTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Paths and flags only: never key material.
        f.write_str(&self.summary)
    }
}

impl CqlTls {
    /// The rustls configuration the driver will use.
    pub fn client_config(&self) -> &Arc<ClientConfig> {
        &self.config
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("reading the {what} {}: {e}", path.display()))
}

/// Builds the client configuration; the error says which file or setting to fix.
pub fn client_config(settings: &CqlTlsSettings) -> Result<CqlTls, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS protocol versions: {e}"))?;
    let builder = if settings.verify {
        let ca = settings.ca_file.as_deref().ok_or(
            "QS_CQL_TLS=true needs QS_CQL_TLS_CA_FILE (the PEM of the CA that signed the nodes' certificates), or QS_CQL_TLS_VERIFY=false for a test node",
        )?;
        let pem = read(ca, "CA file (QS_CQL_TLS_CA_FILE)")?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("QS_CQL_TLS_CA_FILE {}: {e}", ca.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("QS_CQL_TLS_CA_FILE {}: {e}", ca.display()))?;
        }
        if roots.is_empty() {
            return Err(format!(
                "QS_CQL_TLS_CA_FILE {} holds no PEM certificate",
                ca.display()
            ));
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    };
    let config = match &settings.client_cert {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_slice_iter(&read(
                cert,
                "client certificate (QS_CQL_TLS_CERT_FILE)",
            )?)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("QS_CQL_TLS_CERT_FILE {}: {e}", cert.display()))?;
            let key =
                PrivateKeyDer::from_pem_slice(&read(key, "client key (QS_CQL_TLS_KEY_FILE)")?)
                    .map_err(|e| format!("QS_CQL_TLS_KEY_FILE {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("QS_CQL_TLS_CERT_FILE/QS_CQL_TLS_KEY_FILE: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    let summary = format!(
        "CqlTls {{ ca_file: {:?}, verify: {}, client_cert: {:?} }}",
        settings.ca_file,
        settings.verify,
        settings.client_cert.as_ref().map(|(c, _)| c)
    );
    Ok(CqlTls {
        config: Arc::new(config),
        summary,
    })
}

/// Accepts any server certificate (QS_CQL_TLS_VERIFY=false): encryption
/// without authentication of the node. Signatures are still checked, so
/// the handshake is a real one.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifying_needs_a_ca_file_and_says_which_setting() {
        let err = client_config(&CqlTlsSettings {
            verify: true,
            ..CqlTlsSettings::default()
        })
        .err()
        .unwrap_or_default();
        assert!(err.contains("QS_CQL_TLS_CA_FILE"), "{err}");
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_named() {
        let dir = std::env::temp_dir().join(format!("qs-tls-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let empty = dir.join("empty.pem");
        let _ = std::fs::write(&empty, "");
        for path in [dir.join("absent.pem"), empty] {
            let err = client_config(&CqlTlsSettings {
                ca_file: Some(path.clone()),
                verify: true,
                client_cert: None,
            })
            .err()
            .unwrap_or_default();
            assert!(err.contains(&path.display().to_string()), "{err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn without_verification_a_config_is_built_and_debug_shows_no_key() {
        let tls = client_config(&CqlTlsSettings {
            ca_file: None,
            verify: false,
            client_cert: None,
        });
        assert!(tls.is_ok());
        let text = format!("{:?}", tls.ok());
        assert!(text.contains("verify: false"), "{text}");
    }
}
