//! `m365backup admin ...` run as a real process against both stores.

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Backend, TestServer};

on_both_stores! {
    operators_are_managed_from_the_command_line;
}

fn admin(s: &TestServer, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_m365backup"));
    cmd.arg("--data-dir").arg(s.data_dir.path());
    if let Some(url) = &s.settings.database_url {
        cmd.arg("--database-url").arg(url.expose());
    }
    let mut child = cmd
        .arg("admin")
        .args(args)
        .env_remove("M365BACKUP_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

async fn operators_are_managed_from_the_command_line(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (ok, out, err) = admin(&s, &["add", "Alice"], "alice-password\n");
    assert!(ok, "{out}{err}");
    let alice = s.sign_in("alice", "alice-password").await;
    assert_eq!(alice["userName"], "Alice");

    let (ok, _, err) = admin(&s, &["add", "alice"], "another-password\n");
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = admin(&s, &["add", "bob"], "short\n");
    assert!(!ok && err.contains("at least 8"), "{err}");

    let (ok, out, _) = admin(&s, &["list"], "");
    assert!(ok);
    let names: Vec<&str> = out.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(names, ["admin", "Alice"]);

    let (ok, _, err) = admin(&s, &["passwd", "alice"], "alice-new-password\n");
    assert!(ok, "{err}");
    let access = alice["access_token"].as_str().unwrap();
    assert_eq!(
        s.get("/v5/Organizations", access).await.status(),
        401,
        "passwd revokes tokens"
    );
    s.sign_in("alice", "alice-new-password").await;

    let (ok, _, _) = admin(&s, &["remove", "alice"], "");
    assert!(ok);
    let gone = s
        .token_request(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "alice-new-password"),
        ])
        .await;
    assert_eq!(gone.status(), 400);
    let (ok, _, err) = admin(&s, &["remove", "admin"], "");
    assert!(!ok && err.contains("last operator"), "{err}");
    let (ok, _, err) = admin(&s, &["passwd", "nobody"], "whatever-password\n");
    assert!(!ok && err.contains("no operator"), "{err}");
    s.stop().await;
}

/// The first start prints a generated admin password exactly once; later starts print nothing.
#[test]
fn first_start_prints_the_admin_password_once() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_m365backup"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("M365BACKUP_ADMIN_PASSWORD")
            .env_remove("M365BACKUP_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait for "listening" on stderr, then stop it with SIGTERM (graceful shutdown).
        let stderr = child.stderr.take().unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
        let mut log = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            log.push_str(&line);
            log.push('\n');
            if line.contains("listening") {
                break;
            }
        }
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "graceful exit on SIGTERM");
        (String::from_utf8(out.stdout).unwrap(), log)
    };
    let (first, log) = run();
    let password = first
        .lines()
        .find_map(|l| l.strip_prefix("Created operator 'admin' with password: "))
        .unwrap_or_else(|| panic!("password printed on first start: {first}"));
    assert!(password.len() >= 20);
    assert!(!log.contains(password), "the password is not logged");
    let (second, _) = run();
    assert!(!second.contains("password"), "printed only once: {second}");
}
