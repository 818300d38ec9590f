//! The server foundation over HTTPS: sign-in, tokens, protection of every route, routing and
//! body rules, TLS and restarts. Each case runs on SQLite and on PostgreSQL.

use crate::common;

use std::time::Duration;

use common::{json, Backend, TestServer, ADMIN_PASSWORD};
use m365backup_core::auth::OperatorService;
use m365backup_core::Secret;

on_both_stores! {
    sign_in_returns_the_vendor_token_shape;
    wrong_credentials_are_invalid_grant;
    repeated_failures_are_locked_out;
    refresh_tokens_rotate_and_replay_revokes;
    logout_revokes_both_tokens;
    access_tokens_expire;
    password_change_revokes_tokens;
    every_protected_route_needs_a_token;
    paths_are_case_insensitive;
    body_rules_give_clear_4xx;
    state_and_certificate_survive_restart;
}

async fn sign_in_returns_the_vendor_token_shape(backend: Backend) {
    let s = TestServer::start(backend).await;
    let r = s
        .token_request(&[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
        ])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body = json(r).await;
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "userName",
        ".issued",
        ".expires",
    ] {
        assert!(keys.contains(&key), "missing {key} in {body}");
    }
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["userName"], "admin");
    let issued = httpdate::parse_http_date(body[".issued"].as_str().unwrap()).unwrap();
    let expires = httpdate::parse_http_date(body[".expires"].as_str().unwrap()).unwrap();
    assert_eq!(
        expires.duration_since(issued).unwrap(),
        Duration::from_secs(3600)
    );
    assert_ne!(body["access_token"], body["refresh_token"]);

    // The token opens protected routes; user names match regardless of case.
    let token = body["access_token"].as_str().unwrap();
    let orgs = s.get("/v5/Organizations", token).await;
    assert_eq!(orgs.status(), 200);
    assert_eq!(json(orgs).await, serde_json::json!([]));
    let again = s.sign_in("ADMIN", ADMIN_PASSWORD).await;
    assert_eq!(again["userName"], "admin");

    // A public script sends an empty refresh_token and other fields with the password grant.
    let r = s
        .token_request(&[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("refresh_token", ""),
            ("url", "x"),
        ])
        .await;
    assert_eq!(r.status(), 200);
    s.stop().await;
}

async fn wrong_credentials_are_invalid_grant(backend: Backend) {
    let s = TestServer::start(backend).await;
    let wrong_pw = s
        .token_request(&[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", "nope"),
        ])
        .await;
    assert_eq!(wrong_pw.status(), 400);
    let wrong_pw = json(wrong_pw).await;
    assert_eq!(wrong_pw["error"], "invalid_grant");
    let unknown = json(
        s.token_request(&[
            ("grant_type", "password"),
            ("username", "nobody"),
            ("password", "nope"),
        ])
        .await,
    )
    .await;
    // Same answer for an unknown user: no user enumeration.
    assert_eq!(unknown, wrong_pw);

    let missing = s
        .token_request(&[("grant_type", "password"), ("username", "admin")])
        .await;
    assert_eq!(missing.status(), 400);
    assert_eq!(json(missing).await["error"], "invalid_request");
    let no_grant = s.token_request(&[("username", "admin")]).await;
    assert_eq!(json(no_grant).await["error"], "invalid_request");
    let unsupported = s
        .token_request(&[("grant_type", "client_credentials")])
        .await;
    assert_eq!(unsupported.status(), 400);
    assert_eq!(json(unsupported).await["error"], "unsupported_grant_type");
    let bad_refresh = s
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "made-up"),
        ])
        .await;
    assert_eq!(bad_refresh.status(), 400);
    assert_eq!(json(bad_refresh).await["error"], "invalid_grant");
    s.stop().await;
}

async fn repeated_failures_are_locked_out(backend: Backend) {
    let s = TestServer::start_with(backend, |c| {
        c.auth.guard.base_delay = Duration::from_secs(2)
    })
    .await;
    for _ in 0..5 {
        let r = s
            .token_request(&[
                ("grant_type", "password"),
                ("username", "admin"),
                ("password", "wrong"),
            ])
            .await;
        assert_eq!(r.status(), 400);
    }
    // Now even the right password is refused until the delay has passed.
    let locked = s
        .token_request(&[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
        ])
        .await;
    assert_eq!(locked.status(), 429);
    let retry_after: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    assert!(json(locked).await["message"]
        .as_str()
        .unwrap()
        .contains("Too many"));
    // The client address is locked too, whatever user name it tries.
    let other = s
        .token_request(&[
            ("grant_type", "password"),
            ("username", "someone"),
            ("password", "x"),
        ])
        .await;
    assert_eq!(other.status(), 429);

    tokio::time::sleep(Duration::from_secs(retry_after) + Duration::from_millis(200)).await;
    // One more failure doubles the lockout.
    let r = s
        .token_request(&[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", "wrong"),
        ])
        .await;
    assert_eq!(r.status(), 400);
    let locked = s
        .token_request(&[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
        ])
        .await;
    assert_eq!(locked.status(), 429);
    let longer: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(longer > retry_after, "{longer} > {retry_after}");
    tokio::time::sleep(Duration::from_secs(longer) + Duration::from_millis(200)).await;
    s.sign_in("admin", ADMIN_PASSWORD).await;
    s.stop().await;
}

async fn refresh(s: &TestServer, refresh_token: &str) -> reqwest::Response {
    s.token_request(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ])
    .await
}

async fn refresh_tokens_rotate_and_replay_revokes(backend: Backend) {
    let s = TestServer::start(backend).await;
    let first = s.sign_in("admin", ADMIN_PASSWORD).await;
    let r = refresh(&s, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 200);
    let second = json(r).await;
    assert_eq!(second["userName"], "admin");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_ne!(second["access_token"], first["access_token"]);
    let new_access = second["access_token"].as_str().unwrap();
    assert_eq!(s.get("/v5/Organizations", new_access).await.status(), 200);
    // The old access token was replaced.
    assert_eq!(
        s.get("/v5/Organizations", first["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );

    // Replaying the spent refresh token fails and revokes the whole session.
    let replay = refresh(&s, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(replay.status(), 400);
    assert_eq!(s.get("/v5/Organizations", new_access).await.status(), 401);
    assert_eq!(
        refresh(&s, second["refresh_token"].as_str().unwrap())
            .await
            .status(),
        400
    );

    // Other sessions are unaffected.
    let other = s.admin_token().await;
    assert_eq!(s.get("/v5/Organizations", &other).await.status(), 200);
    s.stop().await;
}

async fn logout_revokes_both_tokens(backend: Backend) {
    let s = TestServer::start(backend).await;
    let tokens = s.sign_in("admin", ADMIN_PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    let keep = s.admin_token().await;
    let r = s
        .http
        .delete(s.url("/v5/Token"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(s.get("/v5/Organizations", access).await.status(), 401);
    assert_eq!(
        refresh(&s, tokens["refresh_token"].as_str().unwrap())
            .await
            .status(),
        400
    );
    let again = s
        .http
        .delete(s.url("/v5/token"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);
    assert_eq!(
        s.get("/v5/Organizations", &keep).await.status(),
        200,
        "only that session ends"
    );
    s.stop().await;
}

async fn access_tokens_expire(backend: Backend) {
    let s = TestServer::start_with(backend, |c| {
        c.auth.access_token_lifetime = Duration::from_secs(1)
    })
    .await;
    let tokens = s.sign_in("admin", ADMIN_PASSWORD).await;
    assert_eq!(tokens["expires_in"], 1);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(s.get("/v5/Organizations", access).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let expired = s.get("/v5/Organizations", access).await;
    assert_eq!(expired.status(), 401);
    // The refresh token outlives the access token.
    let renewed = refresh(&s, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(renewed.status(), 200);
    let renewed = json(renewed).await;
    assert_eq!(
        s.get(
            "/v5/Organizations",
            renewed["access_token"].as_str().unwrap()
        )
        .await
        .status(),
        200
    );
    s.stop().await;
}

async fn password_change_revokes_tokens(backend: Backend) {
    let s = TestServer::start(backend).await;
    let tokens = s.sign_in("admin", ADMIN_PASSWORD).await;
    let operators = OperatorService::new(s.server.as_ref().unwrap().store.clone());
    operators
        .set_password("admin", &Secret::new("a-new-password"))
        .await
        .unwrap();
    assert_eq!(
        s.get(
            "/v5/Organizations",
            tokens["access_token"].as_str().unwrap()
        )
        .await
        .status(),
        401
    );
    assert_eq!(
        refresh(&s, tokens["refresh_token"].as_str().unwrap())
            .await
            .status(),
        400
    );
    let old = s
        .token_request(&[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
        ])
        .await;
    assert_eq!(old.status(), 400);
    s.sign_in("admin", "a-new-password").await;
    s.stop().await;
}

/// Walks the served OpenAPI document, so a route added later is covered without editing this.
async fn every_protected_route_needs_a_token(backend: Backend) {
    let s = TestServer::start(backend).await;
    let doc = json(
        s.http
            .get(s.url("/swagger/v5/swagger.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let protected = op.get("security").is_some();
            if !protected {
                assert_eq!(
                    (method.as_str(), path.as_str()),
                    ("post", "/v5/Token"),
                    "only sign-in is public"
                );
                continue;
            }
            let concrete = fill_path_params(path);
            for auth in [None, Some("Bearer not-a-token"), Some("Basic YWRtaW46eA==")] {
                let mut req = s
                    .http
                    .request(method.to_uppercase().parse().unwrap(), s.url(&concrete));
                if let Some(a) = auth {
                    req = req.header("authorization", a);
                }
                let r = req.send().await.unwrap();
                assert_eq!(r.status(), 401, "{method} {concrete} with {auth:?}");
                assert_eq!(r.headers()["www-authenticate"], "Bearer");
                let body = json(r).await;
                assert_eq!(
                    body["message"],
                    "Authorization has been denied for this request."
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 3,
        "the document lists the protected routes ({checked})"
    );
    s.stop().await;
}

fn fill_path_params(template: &str) -> String {
    template
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                uuid::Uuid::new_v4().to_string()
            } else {
                seg.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn paths_are_case_insensitive(backend: Backend) {
    let s = TestServer::start(backend).await;
    for path in ["/v5/token", "/V5/TOKEN", "/v5/Token/"] {
        let r = s
            .http
            .post(s.url(path))
            .form(&[
                ("grant_type", "password"),
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let token = s.admin_token().await;
    for path in [
        "/v5/Organizations",
        "/v5/organizations",
        "/V5/ORGANIZATIONS/",
        "/v5/oRgAnIzAtIoNs?x=Y",
    ] {
        assert_eq!(s.get(path, &token).await.status(), 200, "{path}");
    }
    let missing = uuid::Uuid::new_v4();
    let r = s.get(&format!("/v5/ORGANIZATIONS/{missing}"), &token).await;
    assert_eq!(r.status(), 404);
    assert!(json(r).await["message"]
        .as_str()
        .unwrap()
        .contains(&missing.to_string()));
    assert_eq!(
        s.get("/v5/Organizations/not-a-guid", &token).await.status(),
        404
    );

    // Unknown routes and wrong methods: JSON errors, never an HTML or empty body.
    let unknown = s.get("/v5/NoSuchThing", &token).await;
    assert_eq!(unknown.status(), 404);
    assert!(json(unknown).await["message"].is_string());
    let wrong_method = s
        .http
        .patch(s.url("/v5/Organizations"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert!(json(wrong_method).await["message"].is_string());
    // /metrics wants an operator's token (or the scrape token, see security.rs).
    let anonymous = s.http.get(s.url("/METRICS")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let metrics = s.get("/METRICS", &token).await;
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert!(metrics
        .text()
        .await
        .unwrap()
        .contains("# TYPE m365backup_account_requests_total counter"));
    let get_token = s.http.get(s.url("/v5/Token")).send().await.unwrap();
    assert!(get_token.status().is_client_error());
    assert!(json(get_token).await["message"].is_string());
    s.stop().await;
}

async fn body_rules_give_clear_4xx(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.api.max_body_bytes = 4096).await;
    let huge = "x".repeat(10_000);
    let too_large = s
        .token_request(&[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", &huge),
        ])
        .await;
    assert_eq!(too_large.status(), 413);
    // Answered before the body was read: the connection ends with the answer, and says so.
    assert_eq!(too_large.headers()["connection"], "close");
    assert!(json(too_large).await["message"]
        .as_str()
        .unwrap()
        .contains("4096"));
    // Chunked (no Content-Length): still refused once the limit is crossed.
    let stream = futures_stream(vec![
        b"grant_type=password&password=".to_vec(),
        vec![b'x'; 8000],
    ]);
    let chunked = s
        .http
        .post(s.url("/v5/Token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(chunked.status(), 413);

    let as_json = s
        .http
        .post(s.url("/v5/Token"))
        .header("content-type", "application/json")
        .body(r#"{"grant_type":"password"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(as_json.status(), 415);
    assert!(json(as_json).await["message"]
        .as_str()
        .unwrap()
        .contains("x-www-form-urlencoded"));
    let no_type = s
        .http
        .post(s.url("/v5/Token"))
        .body("grant_type=password")
        .send()
        .await
        .unwrap();
    assert_eq!(no_type.status(), 415);
    // A 401 from the bearer check comes before the body is read, too.
    let unauthenticated = s
        .http
        .post(s.url("/v5/Organizations"))
        .header("content-type", "application/json")
        .body(r#"{"type":"Office365"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    assert_eq!(unauthenticated.headers()["connection"], "close");
    // An answer after the body was read keeps the connection for the next request.
    let signed_in = s
        .token_request(&[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
        ])
        .await;
    assert_eq!(signed_in.status(), 200);
    assert!(signed_in.headers().get("connection").is_none());
    // The server still works.
    s.admin_token().await;
    s.stop().await;
}

fn futures_stream(
    chunks: Vec<Vec<u8>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::iter(chunks.into_iter().map(Ok))
}

async fn state_and_certificate_survive_restart(backend: Backend) {
    let mut s = TestServer::start(backend).await;
    let tokens = s.sign_in("admin", ADMIN_PASSWORD).await;
    let cert_path = s.data_dir.path().join(m365backup::tls::GENERATED_CERT);
    let key_path = s.data_dir.path().join(m365backup::tls::GENERATED_KEY);
    let cert = std::fs::read(&cert_path).expect("certificate generated in the data dir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "private key readable by the owner only");
    }
    // A different admin password now must not matter: the admin exists already.
    s.settings.bootstrap_admin_password = Some(Secret::new("ignored-on-restart"));
    s.restart().await;
    assert_eq!(
        std::fs::read(&cert_path).unwrap(),
        cert,
        "the certificate is reused"
    );
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        s.get("/v5/Organizations", access).await.status(),
        200,
        "tokens survive a restart"
    );
    s.sign_in("admin", ADMIN_PASSWORD).await;
    s.stop().await;
}

/// Serving configured certificate files, and plain HTTP when asked: SQLite suffices here.
#[tokio::test]
async fn configured_certificate_and_plain_http() {
    let certs = tempfile::tempdir().unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["m365backup.test".into()]).unwrap();
    let (cert, key) = (certs.path().join("c.pem"), certs.path().join("k.pem"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.key_pair.serialize_pem()).unwrap();
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.tls = m365backup::config::TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        };
    })
    .await;
    s.admin_token().await;
    assert!(
        !s.data_dir
            .path()
            .join(m365backup::tls::GENERATED_CERT)
            .exists(),
        "no certificate generated"
    );
    s.stop().await;

    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.plain_http = true;
        c.api.scheme = "http";
    })
    .await;
    assert!(s.base.starts_with("http://"));
    let token = s.admin_token().await;
    assert_eq!(s.get("/v5/Organizations", &token).await.status(), 200);
    s.stop().await;
}
