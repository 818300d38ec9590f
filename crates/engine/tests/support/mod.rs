//! Simulated tenants and connections to them for the engine's tests and benchmarks (the benchmark
//! includes this file by path).

use m365backup_core::backup_accounts::BackupAccountSession;
use m365backup_core::directory::{TenantAuth, TenantConnection};
use m365backup_core::organizations::Region;
use m365backup_core::Secret;
use m365sim::tenant::generated_password;
use m365sim::{RunningSim, SimConfig, TenantSpec, ThrottleConfig};

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
