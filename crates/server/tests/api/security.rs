//! The attacks of the security review, performed against the real server, each shown to fail:
//! stored secrets sent to a new endpoint, raced and unbounded sign-ins, huge and forged user
//! names, slow clients, probing internal hosts, hostile Host headers, unknown listing sets, a
//! name locked by strangers, an open `/metrics`, forwarded addresses with ports, files readable
//! by others or planted as symbolic links, slow request bodies, stored organizations whose
//! endpoints the server no longer allows, and a Graph whose collections never end.

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{json, start_sim, Backend, ChildServer, TestServer, ADMIN_PASSWORD};
use m365backup_core::Secret;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

on_both_stores! {
    stored_secrets_never_follow_a_new_endpoint;
}

// ---------------------------------------------------------------------------------------------
// A local listener standing in for an attacker's host or an internal service.

/// Accepts connections, records every byte sent to it, answers each with `answer`.
struct Trap {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<u8>>>,
    connections: Arc<AtomicUsize>,
}

async fn trap(answer: &'static str) -> Trap {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let (rx, count) = (received.clone(), connections.clone());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let rx = rx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_secs(2), socket.read(&mut buf)).await
                {
                    rx.lock().unwrap().extend_from_slice(&buf[..n]);
                }
                let response = format!(
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    Trap {
        addr,
        received,
        connections,
    }
}

impl Trap {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn bytes_received(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

/// An app-only organization body for the simulated tenant, with `secret` when given.
fn app_only_body(sim: &m365sim::RunningSim, secret: Option<&str>) -> Value {
    let t = sim.tenant();
    let mut settings = json!({
        "useApplicationOnlyAuth": true,
        "applicationId": t.app.client_id.to_string(),
        "officeOrganizationName": t.domain,
        "authorityUrl": sim.base_url(),
        "graphUrl": sim.graph_url(),
    });
    if let Some(secret) = secret {
        settings["applicationSecret"] = json!(secret);
    }
    json!({"type": "Office365", "region": "Worldwide", "isSharePointOnline": true,
           "sharePointOnlineSettings": settings})
}

async fn send(
    s: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: &Value,
) -> reqwest::Response {
    s.http
        .request(method, s.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// 1. Stored tenant secrets are never sent to a host the request names.

async fn stored_secrets_never_follow_a_new_endpoint(backend: Backend) {
    let sim = start_sim(m365sim::TenantSpec {
        seed: 31,
        users: 5,
        ..Default::default()
    })
    .await;
    let secret = sim.tenant().app.client_secret.clone();
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let r = send(
        &s,
        reqwest::Method::POST,
        "/v5/Organizations",
        &token,
        &app_only_body(&sim, Some(&secret)),
    )
    .await;
    assert_eq!(r.status(), 201);
    let id = json(r).await["id"].as_str().unwrap().to_owned();
    let path = format!("/v5/Organizations/{id}");

    // The attack: same application, no secret, a new authority (allowed by this server's
    // configuration, so only the keep-secrets rule stands between the secret and the trap).
    let t = trap("{}").await;
    for field in ["authorityUrl", "graphUrl"] {
        let mut body = app_only_body(&sim, None);
        body["sharePointOnlineSettings"][field] = json!(t.url());
        let r = send(&s, reqwest::Method::PUT, &path, &token, &body).await;
        assert_eq!(r.status(), 400, "{field}");
        let message = json(r).await["message"].as_str().unwrap().to_owned();
        assert!(message.contains("must be given again"), "{message}");
    }
    // A region change without the secret: refused too.
    let mut body = app_only_body(&sim, None);
    body["region"] = json!("USgovDefence");
    assert_eq!(
        send(&s, reqwest::Method::PUT, &path, &token, &body)
            .await
            .status(),
        400
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        t.connections.load(Ordering::SeqCst),
        0,
        "nothing reached the trap"
    );
    assert_eq!(t.bytes_received(), 0);

    // Unchanged endpoints keep the stored secret (GET-edit-PUT still works).
    let r = send(
        &s,
        reqwest::Method::PUT,
        &path,
        &token,
        &app_only_body(&sim, None),
    )
    .await;
    assert_eq!(r.status(), 204);
    s.stop().await;

    // A server that allows only Microsoft's clouds refuses the trap even with a secret given.
    let strict = TestServer::start_with(backend, |c| c.allowed_endpoints.clear()).await;
    let token = strict.admin_token().await;
    let mut body = app_only_body(&sim, Some(&secret));
    body["sharePointOnlineSettings"]["authorityUrl"] = json!(t.url());
    let r = send(
        &strict,
        reqwest::Method::POST,
        "/v5/Organizations",
        &token,
        &body,
    )
    .await;
    assert_eq!(r.status(), 400);
    let message = json(r).await["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("https://login.microsoftonline.com"),
        "{message}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(t.connections.load(Ordering::SeqCst), 0);
    assert!(!String::from_utf8_lossy(&t.received.lock().unwrap()).contains(&secret));
    strict.stop().await;
    sim.shutdown().await;
}

/// A TCP relay to `to`: its `http://` origin, and how many connections it forwarded.
async fn relay(to: SocketAddr) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (format!("http://{addr}"), connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_organizations_are_held_to_todays_endpoint_policy() {
    let sim = start_sim(m365sim::TenantSpec {
        seed: 37,
        users: 5,
        ..Default::default()
    })
    .await;
    let sim_addr: SocketAddr = sim
        .base_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    // The organization's endpoints: a relay to the simulator, allowed when it is stored.
    let (via, connections) = relay(sim_addr).await;
    let mut s = TestServer::start(Backend::Sqlite).await;
    let token = s.admin_token().await;
    let secret = sim.tenant().app.client_secret.clone();
    let mut body = app_only_body(&sim, Some(&secret));
    body["sharePointOnlineSettings"]["authorityUrl"] = json!(via);
    body["sharePointOnlineSettings"]["graphUrl"] =
        json!(sim.graph_url().replace(sim.base_url(), &via));
    let r = send(
        &s,
        reqwest::Method::POST,
        "/v5/Organizations",
        &token,
        &body,
    )
    .await;
    assert_eq!(r.status(), 201);
    let id = json(r).await["id"].as_str().unwrap().to_owned();
    let users = format!("/v5/Organizations/{id}/Users");
    assert_eq!(s.get(&users, &token).await.status(), 200);
    assert!(connections.load(Ordering::SeqCst) > 0);

    // The administrator narrows allowed_endpoints: the relay is no longer allowed. The stored
    // organization keeps its old endpoints, and must not send its secret there any more.
    s.settings.allowed_endpoints = vec![sim.base_url().to_owned()];
    s.restart().await;
    let before = connections.load(Ordering::SeqCst);
    let token = s.admin_token().await;
    for path in [users.clone(), format!("/v5/Organizations/{id}/Sites")] {
        let r = s.get(&path, &token).await;
        assert_eq!(r.status(), 409, "{path}");
        let message = json(r).await["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains(&id)
                && message.contains("authorityUrl")
                && message.contains("allowed_endpoints"),
            "{message}"
        );
        assert!(!message.contains(&secret), "{message}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        before,
        "nothing went to the endpoint no longer allowed"
    );
    // The organization itself is still there to be edited.
    let r = s.get(&format!("/v5/Organizations/{id}"), &token).await;
    assert_eq!(r.status(), 200);
    s.stop().await;
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 2. Concurrent guesses cannot overtake the lockout.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_cannot_overtake_the_lockout() {
    // More hashing slots than the threshold, so the hashing bound (503) cannot stand in for
    // the lockout: only counting attempts in flight keeps the guesses at 5.
    let s = TestServer::start_with(Backend::Sqlite, |s| s.auth.hash_slots = 64).await;
    let guesses = (0..100).map(|i| {
        let (http, url) = (s.http.clone(), s.url("/v5/Token"));
        async move {
            http.post(url)
                .form(&[
                    ("grant_type", "password"),
                    ("username", "admin"),
                    ("password", &format!("guess-{i}")),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let verified = statuses.iter().filter(|&&c| c == 400).count();
    let locked_out = statuses.iter().filter(|&&c| c == 429).count();
    assert!(
        (1..=5).contains(&verified),
        "{verified} guesses were verified (threshold 5): {statuses:?}"
    );
    assert_eq!(
        verified + locked_out,
        100,
        "every refusal is the lockout's 429, none the hashing bound's 503: {statuses:?}"
    );
    // The address is locked now, even for the right password.
    let r = s
        .token_request(&[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
        ])
        .await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    s.stop().await;
}

async fn sign_in_as(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    from: &str,
) -> reqwest::StatusCode {
    http.post(format!("{base}/v5/Token"))
        .header("X-Forwarded-For", from)
        .form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", "wrong password"),
        ])
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_sign_ins_keeps_memory_bounded() {
    // A fixed number of hashing slots, so the bound below holds on any number of cores.
    let server = ChildServer::start(&[
        "--trust-forwarded-headers",
        "true",
        "--signin-hash-slots",
        "4",
    ]);
    let http = common::client();
    // Warm up: one sign-in, so the baseline includes argon2's first run.
    sign_in_as(&http, &server.base, "warmup", "198.51.100.1").await;
    let before = server.memory_kib("VmRSS");
    // 300 at once, from 300 addresses for 300 names, so the lockout never applies: only the
    // bound on concurrent hashes stands between the burst and the server's memory.
    let burst = (0..300).map(|i| {
        let (http, base) = (http.clone(), server.base.clone());
        async move {
            let from = format!("10.{}.{}.1", i / 200, i % 200);
            sign_in_as(&http, &base, &format!("user{i}"), &from)
                .await
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(burst).await;
    let peak = server.memory_kib("VmHWM");
    let busy = statuses.iter().filter(|&&c| c == 503).count();
    let verified = statuses.iter().filter(|&&c| c == 400).count();
    println!(
        "burst of 300 sign-ins: RSS before {} MiB, peak {} MiB; {verified} verified, {busy} answered 503",
        before / 1024,
        peak / 1024
    );
    assert_eq!(busy + verified, 300, "{statuses:?}");
    assert!(
        busy > 0,
        "the hashing bound answered 503 to part of the burst"
    );
    // Unbounded, 300 argon2 runs of 19 MiB took 3 GB; bounded, 4 slots' worth (~76 MiB).
    assert!(
        peak.saturating_sub(before) < 150 * 1024,
        "peak grew by {} MiB",
        (peak - before) / 1024
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_and_forged_user_names_neither_grow_memory_nor_forge_logs() {
    let server = ChildServer::start(&[]);
    let http = common::client();
    sign_in_as(&http, &server.base, "warmup", "").await;
    let log_before = server.log_text().len();
    let huge = "u".repeat(1000 * 1000);
    let send_huge = |n: usize| {
        let (http, base, huge) = (http.clone(), server.base.clone(), huge.clone());
        async move {
            for _ in 0..n {
                let r = http
                    .post(format!("{base}/v5/Token"))
                    .form(&[
                        ("grant_type", "password"),
                        ("username", huge.as_str()),
                        ("password", "x"),
                    ])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 400);
                assert_eq!(json(r).await["error"], "invalid_request");
            }
        }
    };
    // The first requests warm the allocator's buffers for megabyte bodies; after them, memory
    // must not grow with the number of requests (it grew by 1 MB a request when names were kept).
    send_huge(20).await;
    let rss_before = server.memory_kib("VmRSS");
    send_huge(200).await;
    // A name that tries to start a log line of its own.
    let forged = "mallory\n2026-11-29T00:00:00Z  INFO m365backup_core::auth: operator signed in operator=admin";
    let r = http
        .post(format!("{}/v5/Token", server.base))
        .form(&[
            ("grant_type", "password"),
            ("username", forged),
            ("password", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_after = server.memory_kib("VmRSS");
    let log = server.log_text();
    println!(
        "200 sign-ins with 1 MB user names: RSS {} -> {} MiB, log +{} bytes",
        rss_before / 1024,
        rss_after / 1024,
        log.len() - log_before
    );
    assert!(
        rss_after.saturating_sub(rss_before) < 20 * 1024,
        "memory grew"
    );
    assert!(log.len() - log_before < 64 * 1024, "the log grew by a lot");
    assert!(
        !log.lines().any(|l| l.contains("operator signed in")),
        "a log line was forged:\n{log}"
    );
    assert!(log.contains("mallory\\n2026"), "the name is logged escaped");
}

// ---------------------------------------------------------------------------------------------
// 4. Slow clients are disconnected; the connection cap holds.

mod tls_client {
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    /// Accepts the server's self-signed certificate, as v5 clients do.
    #[derive(Debug)]
    struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

    impl ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
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

    pub fn connector() -> tokio_rustls::TlsConnector {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

/// How long until the server closes a connection that trickles header bytes (None: still
/// open at `limit`).
async fn trickle_until_closed<S>(mut stream: S, limit: Duration) -> Option<Duration>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let start = Instant::now();
    if stream
        .write_all(b"GET /v5/Organizations HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .is_err()
    {
        return Some(start.elapsed());
    }
    let mut buf = [0u8; 1024];
    while start.elapsed() < limit {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return Some(start.elapsed()),
                Ok(_) => {}
            },
            _ = tokio::time::sleep(Duration::from_millis(300)) => {
                if stream.write_all(b"X-Slow: a\r\n").await.is_err() {
                    return Some(start.elapsed());
                }
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_disconnected() {
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.connections.header_read_timeout = Duration::from_secs(2);
        c.connections.tls_handshake_timeout = Duration::from_secs(1);
        c.connections.max_connections = 100;
    })
    .await;
    let connector = tls_client::connector();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    // 50 clients that finish TLS and then trickle headers forever.
    let trickles = (0..50).map(|_| {
        let (connector, name, addr) = (connector.clone(), name.clone(), s.addr);
        async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let tls = connector.connect(name, tcp).await.unwrap();
            trickle_until_closed(tls, Duration::from_secs(10)).await
        }
    });
    // 20 clients that never start TLS.
    let silent = (0..20).map(|_| {
        let addr = s.addr;
        async move {
            let start = Instant::now();
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            let mut buf = [0u8; 16];
            match tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf)).await {
                Ok(_) => Some(start.elapsed()),
                Err(_) => None,
            }
        }
    });
    let (trickled, silent) = tokio::join!(
        futures_util::future::join_all(trickles),
        futures_util::future::join_all(silent)
    );
    for closed in &trickled {
        let closed = closed.expect("a trickling client was still connected after 10 s");
        assert!(
            closed >= Duration::from_millis(1500) && closed < Duration::from_secs(5),
            "{closed:?}"
        );
    }
    for closed in &silent {
        let closed = closed.expect("a silent client was still connected after 10 s");
        assert!(closed < Duration::from_secs(4), "{closed:?}");
    }
    // A keep-alive connection idle after its first answer is closed at the header timeout too.
    let tcp = TcpStream::connect(s.addr).await.unwrap();
    let mut kept = connector.connect(name.clone(), tcp).await.unwrap();
    kept.write_all(b"GET /v5/Organizations HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(6), kept.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break Some(start.elapsed()),
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => break None,
        }
    };
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 401"));
    let closed = closed.expect("an idle keep-alive connection stayed open");
    assert!(closed < Duration::from_secs(4), "{closed:?}");
    // The server still serves.
    let token = s.admin_token().await;
    assert_eq!(s.get("/v5/Organizations", &token).await.status(), 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_bodies_time_out() {
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.connections.request_timeout = Duration::from_secs(2);
        c.api.request_timeout = Duration::from_secs(2);
    })
    .await;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tcp = TcpStream::connect(s.addr).await.unwrap();
    let mut tls = tls_client::connector().connect(name, tcp).await.unwrap();
    // Headers at once (the header timeout is 30 s), then a sign-in body a byte at a time.
    tls.write_all(
        b"POST /v5/Token HTTP/1.1\r\nHost: localhost\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n\
          grant_type=password&username=admin&password=",
    )
    .await
    .unwrap();
    let start = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let ended = loop {
        if start.elapsed() > Duration::from_secs(10) {
            break None;
        }
        tokio::select! {
            read = tls.read(&mut buf) => match read {
                Ok(0) | Err(_) => break Some(start.elapsed()),
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        break Some(start.elapsed());
                    }
                }
            },
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if tls.write_all(b"x").await.is_err() {
                    break Some(start.elapsed());
                }
            }
        }
    };
    let ended = ended.expect("a trickled body was still being read after 10 s");
    assert!(
        ended >= Duration::from_millis(1500) && ended < Duration::from_secs(4),
        "{ended:?}"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    // The server goes on serving.
    let token = s.admin_token().await;
    assert_eq!(s.get("/v5/Organizations", &token).await.status(), 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds() {
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.connections.header_read_timeout = Duration::from_secs(2);
        c.connections.max_connections = 8;
    })
    .await;
    let connector = tls_client::connector();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut held = Vec::new();
    for _ in 0..8 {
        let tcp = TcpStream::connect(s.addr).await.unwrap();
        held.push(connector.connect(name.clone(), tcp).await.unwrap());
    }
    // The ninth is closed on arrival: its TLS handshake fails at once.
    let start = Instant::now();
    let tcp = TcpStream::connect(s.addr).await.unwrap();
    assert!(connector.connect(name.clone(), tcp).await.is_err());
    assert!(start.elapsed() < Duration::from_secs(1));
    // The idle ones (connected, never a byte of a request) are closed at the header timeout,
    // and the server serves again.
    for mut idle in held {
        let mut buf = [0u8; 64];
        let closed = tokio::time::timeout(Duration::from_secs(4), idle.read(&mut buf)).await;
        assert!(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            "an idle connection stayed open"
        );
    }
    let token = s.admin_token().await;
    assert_eq!(s.get("/v5/Organizations", &token).await.status(), 200);
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 5. Organization URLs cannot be used to read internal hosts.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_hosts_cannot_be_read_through_organization_urls() {
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.allowed_endpoints = vec!["*".into()];
    })
    .await;
    let token = s.admin_token().await;
    let internal = trap(
        r#"{"error":"invalid_client","error_description":"<h1>Internal admin console</h1> db_password=hunter2"}"#,
    )
    .await;
    // A port with nothing listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let body = |authority: String| {
        json!({"type": "Office365", "region": "Worldwide", "isSharePointOnline": true,
               "sharePointOnlineSettings": {
                   "useApplicationOnlyAuth": true, "applicationId": "x", "applicationSecret": "s",
                   "officeOrganizationName": "contoso.onmicrosoft.com",
                   "authorityUrl": authority, "graphUrl": format!("{authority}/v1.0")}})
    };
    let mut messages = Vec::new();
    for authority in [internal.url(), format!("http://{closed}")] {
        let r = send(
            &s,
            reqwest::Method::POST,
            "/v5/Organizations",
            &token,
            &body(authority),
        )
        .await;
        assert_eq!(r.status(), 400);
        let message = json(r).await["message"].as_str().unwrap().to_owned();
        assert!(!message.contains("Internal admin console"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(
            !message.to_lowercase().contains("connection refused"),
            "{message}"
        );
        messages.push(message);
    }
    println!("{messages:#?}");
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 6. Links are built from a valid host only.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_need_a_valid_host() {
    let sim = start_sim(m365sim::TenantSpec {
        seed: 32,
        users: 3,
        ..Default::default()
    })
    .await;
    let s = TestServer::start(Backend::Sqlite).await;
    let token = s.admin_token().await;
    let secret = sim.tenant().app.client_secret.clone();
    let r = send(
        &s,
        reqwest::Method::POST,
        "/v5/Organizations",
        &token,
        &app_only_body(&sim, Some(&secret)),
    )
    .await;
    assert_eq!(r.status(), 201);
    for host in ["h".repeat(60_000), "evil.example/x?".into(), "a b".into()] {
        let r = s
            .http
            .get(s.url("/v5/Organizations"))
            .bearer_auth(&token)
            .header("Host", host.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{}", &host[..host.len().min(20)]);
        let body = r.bytes().await.unwrap();
        assert!(body.len() < 1024, "a {} byte answer", body.len());
    }
    s.stop().await;

    // With a public URL configured, links use it whatever the Host says.
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.api.public_url = Some("https://backup.example.com:4443".into());
    })
    .await;
    let token = s.admin_token().await;
    let r = send(
        &s,
        reqwest::Method::POST,
        "/v5/Organizations",
        &token,
        &app_only_body(&sim, Some(&secret)),
    )
    .await;
    let org = json(r).await;
    assert!(org["_links"]["self"]["href"]
        .as_str()
        .unwrap()
        .starts_with("https://backup.example.com:4443/v5/organizations/"));
    s.stop().await;
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 7. An unknown setId is 404 and reads nothing; concurrent first pages read the directory once.

/// Graph requests the simulated tenant has answered so far (all principals).
async fn graph_requests(sim: &m365sim::RunningSim) -> u64 {
    let stats: Value = reqwest::Client::new()
        .get(format!("{}/_sim/stats", sim.base_url()))
        .header("X-Sim-Secret", common::SIM_SECRET)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["principals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "app")
        .map(|p| p["requests"].as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_sets_are_not_a_way_to_reread_the_directory() {
    let sim = m365sim::start(
        m365sim::SimConfig {
            tenant: m365sim::TenantSpec {
                seed: 33,
                users: 40,
                ..Default::default()
            },
            throttling: m365sim::ThrottleConfig {
                user_rate: 100_000.0,
                user_burst: 100_000.0,
                app_rate: 100_000.0,
                app_burst: 100_000.0,
                ..Default::default()
            },
            control_secret: common::SIM_SECRET.into(),
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let s = TestServer::start(Backend::Sqlite).await;
    let token = s.admin_token().await;
    let secret = sim.tenant().app.client_secret.clone();
    let r = send(
        &s,
        reqwest::Method::POST,
        "/v5/Organizations",
        &token,
        &app_only_body(&sim, Some(&secret)),
    )
    .await;
    let id = json(r).await["id"].as_str().unwrap().to_owned();
    let users = format!("/v5/Organizations/{id}/Users");

    let before = graph_requests(&sim).await;
    let first_pages = (0..16).map(|_| s.get(&users, &token));
    let pages = futures_util::future::join_all(first_pages).await;
    assert!(pages.iter().all(|r| r.status() == 200));
    assert_eq!(
        graph_requests(&sim).await - before,
        1,
        "16 concurrent first pages read the directory once"
    );

    let before = graph_requests(&sim).await;
    let r = s
        .get(&format!("{users}?setId={}", uuid::Uuid::new_v4()), &token)
        .await;
    assert_eq!(r.status(), 404);
    assert!(json(r).await["message"].as_str().unwrap().contains("setId"));
    assert_eq!(graph_requests(&sim).await, before, "nothing was read");
    s.stop().await;
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 8. Nobody can keep an operator locked out by failing on its name.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_cannot_lock_an_operator_out() {
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.api.trust_forwarded_headers = true;
    })
    .await;
    let http = &s.http;
    // Ten addresses fail five times each on "admin": 50 failures lock the name itself.
    for a in 1..=10 {
        for _ in 0..5 {
            let status = sign_in_as(http, &s.base, "admin", &format!("10.9.0.{a}")).await;
            assert_eq!(status, 400);
        }
        assert_eq!(
            sign_in_as(http, &s.base, "admin", &format!("10.9.0.{a}")).await,
            429
        );
    }
    // The operator, from an address that never failed, signs in.
    let r = http
        .post(s.url("/v5/Token"))
        .header("X-Forwarded-For", "192.0.2.10")
        .form(&[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A new attacking address gets one guess before the name's lock applies to it.
    assert_eq!(sign_in_as(http, &s.base, "admin", "10.9.1.1").await, 400);
    assert_eq!(sign_in_as(http, &s.base, "admin", "10.9.1.1").await, 429);
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 9. A Graph endpoint whose collections never end.

/// A tenant that signs in and describes itself, and whose Graph lists users without end: each
/// page links to `?n=N+1`. Its origin, and how many pages of users it served.
async fn endless_graph() -> (String, Arc<AtomicUsize>) {
    use axum::extract::Query;
    use axum::routing::{get, post};
    use std::collections::HashMap;
    let pages = Arc::new(AtomicUsize::new(0));
    let count = pages.clone();
    let users = move |headers: axum::http::HeaderMap, Query(q): Query<HashMap<String, String>>| {
        count.fetch_add(1, Ordering::SeqCst);
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let n: u64 = q.get("n").and_then(|n| n.parse().ok()).unwrap_or(0);
        async move {
            axum::Json(json!({
                "value": [],
                "@odata.nextLink": format!("http://{host}/v1.0/users?n={}", n + 1),
            }))
        }
    };
    let router = axum::Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(|| async {
                axum::Json(json!({"access_token": "t", "token_type": "Bearer", "expires_in": 3600}))
            }),
        )
        .route(
            "/v1.0/organization",
            get(|| async {
                axum::Json(json!({"value": [{
                    "id": "0d7e2c55-0c3e-4d5c-9a57-1f6a2b9c4e10",
                    "displayName": "Endless",
                    "verifiedDomains": [{"name": "endless.onmicrosoft.com", "isDefault": true}],
                }]}))
            }),
        )
        .route("/v1.0/users", get(users))
        .fallback(|| async { axum::Json(json!({"value": []})) });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}"), pages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_without_end_stops_at_the_page_cap() {
    let (graph, pages) = endless_graph().await;
    let s = TestServer::start(Backend::Sqlite).await;
    let token = s.admin_token().await;
    let body = json!({"type": "Office365", "region": "Worldwide", "isSharePointOnline": true,
        "sharePointOnlineSettings": {
            "useApplicationOnlyAuth": true, "applicationId": "app", "applicationSecret": "s",
            "officeOrganizationName": "endless.onmicrosoft.com",
            "authorityUrl": graph, "graphUrl": format!("{graph}/v1.0")}});
    let r = send(
        &s,
        reqwest::Method::POST,
        "/v5/Organizations",
        &token,
        &body,
    )
    .await;
    assert_eq!(r.status(), 201);
    let id = json(r).await["id"].as_str().unwrap().to_owned();
    let r = s
        .get(&format!("/v5/Organizations/{id}/Users"), &token)
        .await;
    let status = r.status().as_u16();
    let message = json(r).await["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    println!("{status}: {message}");
    assert!(status >= 400 && status != 500, "{status}: {message}");
    let cap = m365backup_m365::paging::MAX_PAGES;
    assert!(
        message.contains(&format!("did not end after {cap} pages")),
        "{message}"
    );
    assert_eq!(pages.load(Ordering::SeqCst), cap, "not one page more");
    // The server goes on serving.
    assert_eq!(s.get("/v5/Organizations", &token).await.status(), 200);
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 10. /metrics needs a token; answers carry the security headers.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_a_token_and_answers_carry_security_headers() {
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.api.metrics_token = Some(Secret::new("scrape-token-0123456789"));
    })
    .await;
    let metrics = |token: Option<&'static str>| {
        let mut r = s.http.get(s.url("/metrics"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        async move { r.send().await.unwrap() }
    };
    let anonymous = metrics(None).await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(metrics(Some("wrong")).await.status(), 401);
    assert_eq!(metrics(Some("scrape-token-0123456789")).await.status(), 200);
    let token = s.admin_token().await;
    assert_eq!(s.get("/metrics", &token).await.status(), 200);
    for r in [anonymous, s.get("/v5/Organizations", &token).await] {
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["cache-control"], "no-store");
        assert!(h["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age="));
    }
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 11. Forwarded addresses with ports are one client; files are private.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_with_ports_share_a_lockout() {
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.api.trust_forwarded_headers = true;
    })
    .await;
    for port in 1000..1005 {
        let status = sign_in_as(&s.http, &s.base, "admin", &format!("203.0.113.9:{port}")).await;
        assert_eq!(status, 400);
    }
    // Same address, another port, another name: locked as one client.
    assert_eq!(
        sign_in_as(&s.http, &s.base, "someone", "203.0.113.9:2000").await,
        429
    );
    for port in 1000..1005 {
        let status = sign_in_as(&s.http, &s.base, "x", &format!("[2001:db8::5]:{port}")).await;
        assert_eq!(status, 400);
    }
    assert_eq!(
        sign_in_as(&s.http, &s.base, "y", "2001:db8::6").await,
        429,
        "the same /64"
    );
    s.stop().await;
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_files_are_private_whatever_existed_before() {
    use std::os::unix::fs::PermissionsExt;
    let mut s = TestServer::start(Backend::Sqlite).await;
    let data = s.data_dir.path().to_owned();
    let check = |data: &Path| {
        assert_eq!(mode(data), 0o700);
        for file in ["m365backup.db", "server.key", "tls/server.key"] {
            assert_eq!(mode(&data.join(file)), 0o600, "{file}");
        }
        for file in ["m365backup.db-wal", "m365backup.db-shm"] {
            if data.join(file).exists() {
                assert_eq!(mode(&data.join(file)), 0o600, "{file}");
            }
        }
    };
    check(&data);
    // An administrator (or an older version) left them readable: the next start narrows them.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    for file in ["m365backup.db", "server.key", "tls/server.key"] {
        std::fs::set_permissions(data.join(file), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    s.restart().await;
    check(&data);
    s.stop().await;
}

/// Makes `path` a symbolic link to `target`, keeping what was there as `path.orig`.
fn plant_link(target: &Path, path: &Path) {
    if path.exists() {
        std::fs::rename(path, path.with_extension("orig")).unwrap();
    }
    std::os::unix::fs::symlink(target, path).unwrap();
}

/// Undoes [`plant_link`].
fn remove_link(path: &Path) {
    std::fs::remove_file(path).unwrap();
    let kept = path.with_extension("orig");
    if kept.exists() {
        std::fs::rename(kept, path).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_files_are_never_opened_through_a_symbolic_link() {
    use std::os::unix::fs::PermissionsExt;
    let mut s = TestServer::start(Backend::Sqlite).await;
    let token = s.admin_token().await;
    if let Some(server) = s.server.take() {
        server.shutdown().await.unwrap();
    }
    // Someone who may write in the data dir (but not read the victim's files) plants links to
    // a file outside it: a start that opened them would write the database or a key there, or
    // read it as a key.
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, b"someone else's file").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    for planted in [
        "m365backup.db",
        "m365backup.db-wal",
        "m365backup.db-shm",
        "m365backup.db-journal",
        "server.key",
        "tls/server.key",
    ] {
        let path = s.data_dir.path().join(planted);
        plant_link(&victim, &path);
        let err = match m365backup::server::start(&s.settings).await {
            Ok(_) => panic!("the server started with {planted} a symbolic link"),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            err.contains("symbolic link") && err.contains(planted),
            "{planted}: {err}"
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"someone else's file");
        assert_eq!(mode(&victim), 0o644, "{planted}");
        remove_link(&path);
    }
    // Without the links, the same data dir starts as before.
    s.restart().await;
    assert_eq!(s.get("/v5/Organizations", &token).await.status(), 200);
    s.stop().await;
}
