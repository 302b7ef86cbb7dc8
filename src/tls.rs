//! The TLS settings of a `rediss://` connection (`tls` options → one validated rustls client
//! configuration), built once by the configuration and used by every connect of the transport.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::error::{CacheError, CacheResult};

/// The TLS settings of a connection: what server certificate is trusted, the client
/// certificate (mTLS) and the name checked. Built once, shared by every connect.
pub struct Tls {
    config: Arc<rustls::ClientConfig>,
    /// The name sent (SNI) and checked; the endpoint's host when absent.
    server_name: Option<ServerName<'static>>,
}

/// What a [`Tls`] is made of (PEM texts as given by the caller).
#[derive(Default)]
pub struct TlsSettings<'a> {
    /// The only roots trusted; the web PKI roots (webpki-roots) when absent.
    pub ca: Option<&'a [u8]>,
    /// Client certificate chain and its private key (mTLS).
    pub client: Option<(&'a [u8], &'a [u8])>,
    pub server_name: Option<&'a str>,
    /// False accepts any server certificate (tests only): the handshake signatures are still
    /// checked, the certificate chain and name are not.
    pub reject_unauthorized: bool,
}

impl Tls {
    /// The rustls client configuration every connection shares.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }

    /// Validates the settings (a bad PEM, key or name is `InvalidArg`; no key material is
    /// ever echoed).
    pub fn new(s: &TlsSettings<'_>) -> CacheResult<Tls> {
        let bad = |m: &str| CacheError::InvalidArg(m.to_string());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|_| bad("TLS: no protocol version available"))?;
        let builder = if s.reject_unauthorized {
            let mut roots = rustls::RootCertStore::empty();
            match s.ca {
                Some(pem) => {
                    for cert in CertificateDer::pem_slice_iter(pem) {
                        let cert = cert.map_err(|_| {
                            bad("tls.ca must be a PEM certificate (or the path of one)")
                        })?;
                        roots.add(cert).map_err(|_| {
                            bad("tls.ca holds a certificate that is not a valid CA")
                        })?;
                    }
                    if roots.is_empty() {
                        return Err(bad("tls.ca must be a PEM certificate (or the path of one)"));
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder.with_root_certificates(roots)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServerCertificate(provider)))
        };
        let config = match s.client {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        bad("tls.cert must be a PEM certificate chain (or the path of one)")
                    })?;
                if chain.is_empty() {
                    return Err(bad(
                        "tls.cert must be a PEM certificate chain (or the path of one)",
                    ));
                }
                let key = PrivateKeyDer::from_pem_slice(key)
                    .map_err(|_| bad("tls.key must be a PEM private key (or the path of one)"))?;
                builder.with_client_auth_cert(chain, key).map_err(|_| {
                    bad("tls.key does not match tls.cert, or its type is not supported")
                })?
            }
            None => builder.with_no_client_auth(),
        };
        let server_name = s
            .server_name
            .map(|n| {
                ServerName::try_from(n.to_string())
                    .map_err(|_| bad("tls.servername must be a DNS name or an IP address"))
            })
            .transpose()?;
        Ok(Tls {
            config: Arc::new(config),
            server_name,
        })
    }

    /// The name sent (SNI) and checked for a connection to `host`.
    pub fn name_for(&self, host: &str) -> CacheResult<ServerName<'static>> {
        match &self.server_name {
            Some(n) => Ok(n.clone()),
            None => ServerName::try_from(host.to_string()).map_err(|_| {
                CacheError::Unavailable("TLS: the host is not a valid server name".into())
            }),
        }
    }
}

/// `rejectUnauthorized: false`: any certificate is accepted, but the peer must still prove
/// it holds the key of the one it sent (the handshake signatures are verified).
#[derive(Debug)]
struct AnyServerCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
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
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
