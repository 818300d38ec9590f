//! Revoked bearer tokens are refused although validated tokens are kept in memory: at once on
//! the node that revoked them (logout, refresh, and the `m365backup admin` password change and
//! removal, a separate process), and within the re-validation period on another node sharing
//! the PostgreSQL database.
//!
//! Each token is kept in use by a background client while it is revoked, so it is in the
//! server's cache at that moment, as it would be for a busy client.

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{json, Backend, TestServer, ADMIN_PASSWORD};

on_both_stores! {
    logout_and_refresh_revoke_at_once;
    operator_changes_from_the_command_line_revoke_at_once;
}

/// Keeps `token` in use against `base` (one GET after another) until dropped.
struct Busy {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Busy {
    fn start(base: &str, token: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (url, token, flag) = (
            format!("{base}/v5/Organizations"),
            token.to_owned(),
            stop.clone(),
        );
        let task = tokio::spawn(async move {
            let http = common::client();
            while !flag.load(Ordering::Relaxed) {
                let _ = http.get(&url).bearer_auth(&token).send().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Self { stop, task }
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
    }
}

async fn status(s: &TestServer, token: &str) -> u16 {
    s.get("/v5/Organizations", token).await.status().as_u16()
}

/// Signs in and checks the token works; (access, refresh).
async fn signed_in(s: &TestServer, user: &str, password: &str) -> (String, String) {
    let t = s.sign_in(user, password).await;
    let access = t["access_token"].as_str().unwrap().to_owned();
    assert_eq!(status(s, &access).await, 200);
    (access, t["refresh_token"].as_str().unwrap().to_owned())
}

async fn refresh(s: &TestServer, refresh_token: &str) -> reqwest::Response {
    s.token_request(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ])
    .await
}

async fn logout_and_refresh_revoke_at_once(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (other, _) = signed_in(&s, "admin", ADMIN_PASSWORD).await;

    // Logout.
    let (access, _) = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let busy = Busy::start(&s.base, &access);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = s
        .http
        .delete(s.url("/v5/Token"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(status(&s, &access).await, 401, "refused right after logout");
    busy.stop().await;

    // A refresh replaces the access token; replaying the spent refresh token ends the session.
    let (access, refresh_token) = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let busy = Busy::start(&s.base, &access);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let renewed = json(refresh(&s, &refresh_token).await).await;
    assert_eq!(
        status(&s, &access).await,
        401,
        "the replaced token is refused"
    );
    busy.stop().await;
    let access = renewed["access_token"].as_str().unwrap().to_owned();
    let busy = Busy::start(&s.base, &access);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(refresh(&s, &refresh_token).await.status(), 400);
    assert_eq!(status(&s, &access).await, 401, "a replay ends the session");
    busy.stop().await;

    // Revocations drop cached tokens, never the tokens themselves: the other session lives on.
    assert_eq!(status(&s, &other).await, 200);
    s.stop().await;
}

async fn operator_changes_from_the_command_line_revoke_at_once(backend: Backend) {
    let s = TestServer::start(backend).await;
    let admin_token = s.admin_token().await;
    run_admin(&s, &["add", "alice"], "alice-password\n").await;

    // Password change: a separate process; when it returns, this server refuses the token.
    let (access, _) = signed_in(&s, "alice", "alice-password").await;
    let busy = Busy::start(&s.base, &access);
    run_admin(&s, &["passwd", "alice"], "alice-new-password\n").await;
    assert_eq!(status(&s, &access).await, 401, "refused right after passwd");
    busy.stop().await;

    // Removal: the same.
    let (access, _) = signed_in(&s, "alice", "alice-new-password").await;
    let busy = Busy::start(&s.base, &access);
    run_admin(&s, &["remove", "alice"], "").await;
    assert_eq!(status(&s, &access).await, 401, "refused right after remove");
    busy.stop().await;

    assert_eq!(
        status(&s, &admin_token).await,
        200,
        "other operators unaffected"
    );
    s.stop().await;
}

/// Runs `m365backup admin <args>` as a real process with `stdin` as its standard input.
async fn run_admin(s: &TestServer, args: &[&str], stdin: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_m365backup"));
    cmd.arg("--data-dir").arg(s.data_dir.path());
    if let Some(url) = &s.settings.database_url {
        cmd.arg("--database-url").arg(url.expose());
    }
    cmd.arg("admin")
        .args(args)
        .env_remove("M365BACKUP_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let stdin = stdin.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "admin {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two nodes on one PostgreSQL database: a logout on one is seen by the other within the
/// re-validation period, although the other had the token in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_refuses_a_revoked_token_within_two_seconds() {
    let a = TestServer::start(Backend::Postgres).await;
    let b_dir = tempfile::tempdir().unwrap();
    let mut b_settings = a.settings.clone();
    b_settings.data_dir = b_dir.path().to_owned();
    b_settings.server_key_file = a.settings.server_key_file.clone();
    let b = m365backup::server::start(&b_settings).await.unwrap();
    let b_base = format!("https://127.0.0.1:{}", b.addr.port());
    let on_b = |token: &str| {
        let (url, token) = (format!("{b_base}/v5/Organizations"), token.to_owned());
        async move {
            common::client()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };

    let (access, _) = signed_in(&a, "admin", ADMIN_PASSWORD).await;
    let (other, _) = signed_in(&a, "admin", ADMIN_PASSWORD).await;
    assert_eq!(on_b(&access).await, 200, "a token works on every node");
    let busy = Busy::start(&b_base, &access);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let r = a
        .http
        .delete(a.url("/v5/Token"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let revoked = Instant::now();
    assert_eq!(
        status(&a, &access).await,
        401,
        "at once on the node that revoked"
    );
    // Polled: B had the token in memory, and asks the store again within REVALIDATE_AFTER.
    let refused_after = loop {
        if on_b(&access).await == 401 {
            break revoked.elapsed();
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(2),
            "node B still accepts a token revoked on node A"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    busy.stop().await;
    assert!(
        refused_after < Duration::from_secs(2),
        "node B refused the token only after {refused_after:?}"
    );
    assert_eq!(on_b(&other).await, 200, "only the revoked token is refused");
    b.shutdown().await.unwrap();
    a.stop().await;
}
