//! Simulated tenants and connections to them for the engine's tests and benchmarks (the benchmark
//! includes this file by path).

use m365backup_core::backup_accounts::BackupAccountSession;
use m365backup_core::directory::{TenantAuth, TenantConnection};
use m365backup_core::organizations::Region;
use m365backup_core::Secret;
use m365backup_repo::{InitOptions, Location, MemoryCatalog, Repository};
use m365sim::tenant::generated_password;
use m365sim::{RunningSim, SimConfig, TenantSpec, ThrottleConfig};

/// A new repository in a local folder, with a cheap key derivation (tests make many).
#[allow(dead_code)] // Not every includer (the benchmark) stores anything.
pub async fn local_repository(dir: &std::path::Path) -> Repository {
    Repository::init(
        &Location::Local {
            path: dir.to_owned(),
        },
        &Secret::new("test password"),
        std::sync::Arc::new(MemoryCatalog::new()),
        uuid::Uuid::new_v4(),
        &InitOptions {
            kdf_cost: (1024, 1),
            ..InitOptions::default()
        },
    )
    .await
    .unwrap()
}

/// Two OneDrives (user1's and backup1's) of more than one delta page each (Graph's 200 items),
/// every request slowed so that a test can change the tenant between two pages of a round.
#[allow(dead_code)] // Not every includer (the benchmark) pages through rounds.
pub async fn paged_sim(seed: u64) -> RunningSim {
    let tenant = TenantSpec {
        seed,
        users: 1,
        backup_accounts: 1,
        sites: 0,
        m365_groups: 0,
        files_per_drive: 230,
        folders_per_drive: 3,
        max_file_size: 16 << 10,
        max_versions: 1,
        ..TenantSpec::default()
    };
    let throttling = ThrottleConfig {
        enabled: false,
        latency_ms: 150,
        ..ThrottleConfig::default()
    };
    start_sim(tenant, throttling).await
}

#[allow(dead_code)] // Not every includer (the benchmark) pages through rounds.
/// Items (and tombstones among them) a full round of `drive` lists now, page by page as Graph
/// serves them.
pub fn full_round_items(sim: &RunningSim, drive: &str) -> (u64, u64) {
    let state = sim.tenant().drive(drive).unwrap().state.read().unwrap();
    let (mut items, mut tombstones, mut next) = (0, 0, 0);
    loop {
        let page = state.delta_page(0, next, 200);
        items += page.items.len() as u64;
        tombstones += page
            .items
            .iter()
            .filter(|&&i| state.items[i].deleted)
            .count() as u64;
        next = page.next;
        if page.done {
            return (items, tombstones);
        }
    }
}

#[allow(dead_code)] // Not every includer (the benchmark) changes files.
/// The id of the file of `drive` that a delta round lists first (the lowest change position).
pub fn first_file(sim: &RunningSim, drive: &str) -> String {
    let state = sim.tenant().drive(drive).unwrap().state.read().unwrap();
    state
        .items
        .iter()
        .filter(|i| i.file.is_some() && !i.deleted)
        .min_by_key(|i| i.log_pos)
        .unwrap()
        .id
        .clone()
}

#[allow(dead_code)] // Not every includer (the benchmark) deletes.
/// Deletes the last three files of `drive` and a folder holding files; the deleted files' ids.
pub fn delete_some(sim: &RunningSim, drive: &str) -> Vec<String> {
    let (files, folder) = {
        let state = sim.tenant().drive(drive).unwrap().state.read().unwrap();
        let files: Vec<String> = state
            .items
            .iter()
            .filter(|i| i.file.is_some() && !i.deleted)
            .map(|i| i.id.clone())
            .collect();
        let folder = state
            .items
            .iter()
            .find(|f| {
                f.parent.is_some()
                    && f.file.is_none()
                    && state
                        .items
                        .iter()
                        .any(|c| c.parent.as_deref() == Some(&f.id) && c.file.is_some())
            })
            .expect("a folder with files")
            .id
            .clone();
        (files, folder)
    };
    let handle = sim.drive(drive).unwrap();
    for f in files.iter().rev().take(3) {
        handle.delete(f).unwrap();
    }
    handle.delete(&folder).unwrap();
    let state = sim.tenant().drive(drive).unwrap().state.read().unwrap();
    state
        .items
        .iter()
        .filter(|i| i.deleted && i.file.is_some())
        .map(|i| i.id.clone())
        .collect()
}

/// A simulated tenant on a loopback port.
pub async fn start_sim(tenant: TenantSpec, throttling: ThrottleConfig) -> RunningSim {
    let config = SimConfig {
        tenant,
        throttling,
        ..SimConfig::default()
    };
    m365sim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// Signing in as `login` through the tenant's app (password grant).
pub fn connection(sim: &RunningSim, login: &str, password: &str) -> TenantConnection {
    TenantConnection {
        region: Region::Worldwide,
        authority_url: Some(sim.base_url().to_owned()),
        graph_url: Some(sim.graph_url()),
        tenant: sim.tenant().domain.clone(),
        auth: TenantAuth::Password {
            application_id: sim.tenant().app.client_id.to_string(),
            application_secret: None,
            account: login.to_owned(),
            password: Secret::new(password),
        },
    }
}

/// The organization's own credentials: the tenant's app with application permissions.
pub fn app_connection(sim: &RunningSim) -> TenantConnection {
    TenantConnection {
        region: Region::Worldwide,
        authority_url: Some(sim.base_url().to_owned()),
        graph_url: Some(sim.graph_url()),
        tenant: sim.tenant().domain.clone(),
        auth: TenantAuth::AppSecret {
            application_id: sim.tenant().app.client_id.to_string(),
            secret: Secret::new(sim.tenant().app.client_secret.clone()),
        },
    }
}

/// The tenant's generated backup account `backupI` (the tenant generated with `seed`).
pub fn backup_account(sim: &RunningSim, i: usize, seed: u64) -> BackupAccountSession {
    let login = format!("backup{i}@{}", sim.tenant().domain);
    BackupAccountSession {
        connection: connection(
            sim,
            &login,
            &generated_password(&format!("backup{i}"), seed),
        ),
        login,
    }
}
