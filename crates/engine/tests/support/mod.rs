//! Simulated tenants and connections to them for the engine's tests and benchmarks (the benchmark
//! includes this file by path).

use m365backup_core::backup_accounts::BackupAccountSession;
use m365backup_core::directory::{TenantAuth, TenantConnection};
use m365backup_core::organizations::Region;
use m365backup_core::Secret;
use m365sim::tenant::generated_password;
use m365sim::{RunningSim, SimConfig, TenantSpec, ThrottleConfig};

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
