//! `m365backup repository …` run as a real process against both stores, beside a running server.

use crate::common;

use common::{Backend, TestServer};
use m365backup_core::Secret;
use m365backup_repo::{MemoryCatalog, Repository};

on_both_stores! {
    repositories_are_managed_from_the_command_line;
}

/// `m365backup repository <args>`.
async fn cli(s: &TestServer, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut all = vec!["repository"];
    all.extend_from_slice(args);
    common::cli_with_env(s, &all, env).await
}

async fn repositories_are_managed_from_the_command_line(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (ok, out, err) = cli(&s, &["list"], &[]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("Default Backup Repository") && out.contains("default"),
        "{out}"
    );

    let folder = s.data_dir.path().join("cli-repo");
    let folder_arg = folder.display().to_string();
    let password = "cli repository password";
    let (ok, out, err) = cli(
        &s,
        &[
            "create",
            "Nightly",
            "--path",
            &folder_arg,
            "--retention-type",
            "ItemLevel",
            "--retention",
            "90d",
        ],
        &[("M365BACKUP_REPOSITORY_PASSWORD", password)],
    )
    .await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("Added repository"), "{out}");
    let (ok, out, _) = cli(&s, &["list"], &[]).await;
    assert!(
        ok && out.contains("Nightly") && out.contains("ItemLevel") && out.contains("Days(90)"),
        "{out}"
    );
    // The server sees what the command line added.
    let token = s.admin_token().await;
    let repos = common::json(s.get("/v5/BackupRepositories", &token).await).await;
    let nightly = repos
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Nightly")
        .unwrap()
        .clone();
    assert_eq!(nightly["retentionType"], "ItemLevel");

    // The recovery password opens the repository without the server.
    let (ok, printed, err) = cli(&s, &["recovery-password", "nightly"], &[]).await;
    assert!(ok, "{err}");
    assert_eq!(printed.trim(), password);
    let (ok, printed, _) = cli(&s, &["recovery-password", "Default Backup Repository"], &[]).await;
    assert!(ok);
    let location = m365backup_repo::Location::Local {
        path: s.data_dir.path().join("repository"),
    };
    Repository::open(
        &location,
        &Secret::new(printed.trim()),
        std::sync::Arc::new(MemoryCatalog::new()),
        uuid::Uuid::new_v4(),
    )
    .await
    .unwrap();

    for args in [
        vec!["check", "Nightly", "--read-data-subset", "50%"],
        vec!["check", nightly["id"].as_str().unwrap(), "--read-data"],
        vec!["rebuild-catalog", "Nightly"],
        vec!["prune", "Nightly", "--grace-secs", "0"],
    ] {
        let (ok, out, err) = cli(&s, &args, &[]).await;
        assert!(ok, "{args:?}: {out}{err}");
    }
    let (ok, _, err) = cli(&s, &["check", "no-such-repository"], &[]).await;
    assert!(!ok && err.contains("was not found"), "{err}");
    let (ok, _, err) = cli(&s, &["check", "Nightly", "--read-data-subset", "lots"], &[]).await;
    assert!(!ok && err.contains("not a percentage"), "{err}");
    let (ok, _, err) = cli(&s, &["create", "Nightly", "--path", &folder_arg], &[]).await;
    assert!(!ok && err.contains("already exists"), "{err}");
    s.stop().await;
}
