//! gRPC over mutual TLS, as KEDA's `caCert` + `tlsClientCert`/`tlsClientKey` settings use it.
//! Certificates are made in the test with the `openssl` CLI.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use proto::keda::external_scaler_client::ExternalScalerClient;
use scaler::source::SourceDeps;
use scaler::{App, TlsFiles};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl CLI");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server leaf for localhost/127.0.0.1 and a client leaf, all P-256.
fn make_pki(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        dir,
        &[
            &["req", "-x509"],
            &ec[..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-subj",
                "/CN=test-ca",
                "-days",
                "1",
            ],
        ]
        .concat(),
    );
    for (name, ext) in [
        (
            "server",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        ),
        (
            "client",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        ),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        let (key, csr, crt, extf) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
        );
        openssl(
            dir,
            &[
                &["req"],
                &ec[..],
                &[
                    "-keyout",
                    &key,
                    "-out",
                    &csr,
                    "-subj",
                    &format!("/CN={name}"),
                ],
            ]
            .concat(),
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "1",
                "-extfile",
                &extf,
            ],
        );
    }
}

async fn connect(
    addr: std::net::SocketAddr,
    tls: ClientTlsConfig,
) -> Result<ExternalScalerClient<Channel>, tonic::transport::Error> {
    let channel = Channel::from_shared(format!("https://localhost:{}", addr.port()))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(ExternalScalerClient::new(channel))
}

#[tokio::test]
async fn mutual_tls_like_keda() {
    proto::tls::provider();
    tokio::time::timeout(Duration::from_secs(30), async {
        let dir = std::env::temp_dir().join(format!("h-scaler-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        make_pki(&dir);
        let files = TlsFiles {
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
            client_ca: Some(dir.join("ca.crt")),
        };
        let tls = scaler::server::load_tls(&files).unwrap();
        let app = App::new(SourceDeps::default(), Duration::from_secs(1));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            app.serve_grpc(listener, Some(tls), std::future::pending())
                .await
        });

        let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
        let ca = Certificate::from_pem(read("ca.crt"));
        let with_cert = ClientTlsConfig::new()
            .ca_certificate(ca.clone())
            .identity(Identity::from_pem(read("client.crt"), read("client.key")))
            .domain_name("localhost");
        let mut c = connect(addr, with_cert).await.unwrap();
        let r = so_ref(
            "gw",
            &[
                ("source", "direct"),
                ("gateway", "gw"),
                ("targetAllocationsPerPod", "1"),
                ("scaleInStep", "bad"),
            ],
        );
        // The request made it through TLS to the service (which rejects the metadata).
        assert_eq!(
            c.get_metric_spec(r.clone()).await.unwrap_err().code(),
            tonic::Code::InvalidArgument
        );

        // Without a client certificate the handshake (or the first call) fails.
        let without = ClientTlsConfig::new()
            .ca_certificate(ca)
            .domain_name("localhost");
        let failed = match connect(addr, without).await {
            Err(_) => true,
            Ok(mut c) => c
                .get_metric_spec(r)
                .await
                .is_err_and(|s| s.code() != tonic::Code::InvalidArgument),
        };
        assert!(failed, "a client without a certificate must be refused");
        std::fs::remove_dir_all(dir).unwrap();
    })
    .await
    .expect("test timed out");
}
