//! `m365sim`: serve a simulated Microsoft 365 tenant.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use m365sim::{SimConfig, TenantSpec, ThrottleConfig};

#[derive(Parser, Debug)]
#[command(
    name = "m365sim",
    version,
    about = "Microsoft 365 tenant simulator (identity platform + Graph v1.0) that throttles like Microsoft"
)]
struct Cli {
    /// Address to listen on (plain HTTP).
    #[arg(long, default_value = "127.0.0.1:8365")]
    listen: SocketAddr,
    /// Tenant file (JSON, or TOML by extension); the flags below override its sizes.
    #[arg(long)]
    tenant_file: Option<PathBuf>,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long)]
    users: Option<usize>,
    #[arg(long)]
    backup_accounts: Option<usize>,
    #[arg(long)]
    sites: Option<usize>,
    /// Document libraries of every site.
    #[arg(long)]
    libraries_per_site: Option<usize>,
    /// Sub-sites of every site.
    #[arg(long)]
    subsites_per_site: Option<usize>,
    #[arg(long)]
    files_per_drive: Option<usize>,
    /// Large files (50–500 MiB unless the tenant file says otherwise) added to every drive.
    #[arg(long)]
    large_files_per_drive: Option<usize>,
    /// Largest generated file, bytes.
    #[arg(long)]
    max_file_size: Option<u64>,
    /// Units per second per user (0 disables throttling altogether).
    #[arg(long)]
    user_rate: Option<f64>,
    #[arg(long)]
    app_rate: Option<f64>,
    /// Throttling profile: `fast` (per-second token buckets) or `realistic` (Microsoft's
    /// published windows and limits).
    #[arg(long, value_parser = ["fast", "realistic"], default_value = "fast")]
    profile: String,
    /// Realistic profile: how long Microsoft's windows last (1 = as published).
    #[arg(long)]
    time_scale: Option<f64>,
    /// Licences of the tenant (app and tenant budgets scale with them) [default: users].
    #[arg(long)]
    licenses: Option<u64>,
    /// Shared secret of the control API.
    #[arg(long, env = "M365SIM_CONTROL_SECRET", default_value = "sim-control")]
    control_secret: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let mut tenant = match &cli.tenant_file {
        Some(path) => TenantSpec::from_file(path)?,
        None => TenantSpec::default(),
    };
    macro_rules! set {
        ($($field:ident),*) => { $( if let Some(v) = cli.$field { tenant.$field = v; } )* };
    }
    set!(
        seed,
        users,
        backup_accounts,
        sites,
        libraries_per_site,
        subsites_per_site,
        files_per_drive,
        large_files_per_drive,
        max_file_size
    );
    if cli.licenses.is_some() {
        tenant.licenses = cli.licenses;
    }
    let mut throttling = if cli.profile == "realistic" {
        ThrottleConfig::realistic(cli.time_scale.unwrap_or(1.0))
    } else {
        ThrottleConfig::default()
    };
    if let Some(r) = cli.user_rate {
        throttling.enabled = r > 0.0;
        throttling.user_rate = r;
        throttling.user_burst = (2.0 * r).max(1.0);
    }
    if let Some(r) = cli.app_rate {
        throttling.app_rate = r;
        throttling.app_burst = (2.0 * r).max(1.0);
    }
    let config = SimConfig {
        tenant,
        throttling,
        control_secret: cli.control_secret,
        ..SimConfig::default()
    };
    let sim = m365sim::start(config, cli.listen).await?;
    let t = sim.tenant();
    println!(
        "m365sim serving tenant {} ({}) at {}",
        t.domain,
        t.id,
        sim.base_url()
    );
    println!(
        "  authority URL: {}   Graph URL: {}",
        sim.base_url(),
        sim.graph_url()
    );
    println!(
        "  app: client id {}  secret {}",
        t.app.client_id, t.app.client_secret
    );
    println!(
        "  {} users ({} licences), {} groups, {} sites, {} drives",
        t.users.len(),
        t.licenses,
        t.groups.len(),
        t.sites.len(),
        t.drives.len()
    );
    if let Some(g) = t.backup_accounts_group() {
        println!("  security group '{}' ({}):", g.display_name, g.id);
        for &i in &g.members {
            println!(
                "    {}  password {}",
                t.users[i].user_principal_name, t.users[i].password
            );
        }
    }
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
