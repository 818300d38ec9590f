//! `serve --demo`: a simulated Microsoft 365 tenant on a loopback port, registered as an
//! organization, so everything can be tried without a tenant. The tenant is seeded so that the
//! founding document's example (`PUT /v5/Organizations/6f9b3da3-…/backupaccounts` with
//! `account1@office365.onmicrosoft.com` of group `6e570850-…`) works verbatim. That group is
//! site-collection administrator of every site and OneDrive except `site4` and user50's
//! OneDrive, so the organization's own (app-only) credentials have work to do too.

use std::net::SocketAddr;

use anyhow::Context;
use m365backup_core::ids::OrganizationId;
use m365backup_core::organization_service::{
    ConnectionInput, ConnectionSecrets, OrganizationInput, OrganizationService,
};
use m365backup_core::organizations::{ConnectionSettings, OrganizationType, Region};
use m365backup_core::{CoreError, Secret};
use m365sim::tenant::{generated_password, AdminGrant, GroupKind, GroupSpec, UserSpec};
use m365sim::{RunningSim, SimConfig, TenantSpec, ThrottleConfig};

pub const DEMO_ORGANIZATION_ID: &str = "6f9b3da3-204d-4a4b-b466-55586e0233fc";
pub const DEMO_GROUP_ID: &str = "6e570850-9ce9-40ed-b81d-41772dabcead";
pub const DEMO_DOMAIN: &str = "office365.onmicrosoft.com";
const DEMO_SEED: u64 = 365;
const DEMO_ACCOUNTS: usize = 4;

/// The GUID strings above, parsed at compile time (a typo fails the build).
const DEMO_ORGANIZATION: OrganizationId = OrganizationId(parse_guid(DEMO_ORGANIZATION_ID));
const DEMO_GROUP: uuid::Uuid = parse_guid(DEMO_GROUP_ID);

const fn parse_guid(s: &str) -> uuid::Uuid {
    match uuid::Uuid::try_parse(s) {
        Ok(id) => id,
        Err(_) => panic!("not a GUID"),
    }
}

/// The demo tenant: a realistic small tenant plus the founding document's accounts and group.
pub fn tenant_spec() -> TenantSpec {
    let accounts: Vec<UserSpec> = (1..=DEMO_ACCOUNTS)
        .map(|i| UserSpec {
            id: None,
            user_principal_name: format!("account{i}@{DEMO_DOMAIN}"),
            display_name: format!("tworker{i}"),
            // The founding document's example password for account1.
            password: if i == 1 {
                "XXXXX".into()
            } else {
                generated_password(&format!("account{i}"), DEMO_SEED)
            },
            account_enabled: true,
        })
        .collect();
    TenantSpec {
        seed: DEMO_SEED,
        tenant_id: Some(uuid::uuid!("3b8e5a55-5d2b-4a63-9a5f-6d0d3c6e7f01")),
        domain: Some(DEMO_DOMAIN.into()),
        display_name: Some("Office 365 Demo".into()),
        users: 50,
        sites: 4,
        files_per_drive: 12,
        extra_groups: vec![GroupSpec {
            id: Some(DEMO_GROUP),
            display_name: "Backup Workers".into(),
            kind: GroupKind::Security,
            members: accounts
                .iter()
                .map(|a| a.user_principal_name.clone())
                .collect(),
        }],
        extra_users: accounts,
        site_admins: Some(vec![
            AdminGrant {
                except_sites: vec!["site4".into()],
                except_onedrives: vec![format!("user50@{DEMO_DOMAIN}")],
                ..AdminGrant::everywhere(DEMO_GROUP_ID)
            },
            AdminGrant::everywhere(m365sim::tenant::BACKUP_ACCOUNTS_GROUP),
        ]),
        app_client_id: Some(uuid::uuid!("8d3f2c1b-0a9e-4f7d-8c6b-5a4e3d2c1b0a")),
        app_client_secret: Some("demo-app-secret".into()),
        ..TenantSpec::default()
    }
}

/// Starts the simulated tenant on a loopback port.
pub async fn start_sim() -> anyhow::Result<RunningSim> {
    let config = SimConfig {
        tenant: tenant_spec(),
        throttling: ThrottleConfig::default(),
        ..SimConfig::default()
    };
    m365sim::start(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
}

/// Registers (or re-points) the demo organization at the running simulator.
pub async fn register(organizations: &OrganizationService, sim: &RunningSim) -> anyhow::Result<()> {
    let t = sim.tenant();
    let settings = ConnectionSettings {
        application_id: Some(t.app.client_id.to_string()),
        use_application_only_auth: true,
        office_organization_name: Some(t.domain.clone()),
        authority_url: Some(sim.base_url().to_owned()),
        graph_url: Some(sim.graph_url()),
        ..ConnectionSettings::default()
    };
    let input = OrganizationInput {
        kind: OrganizationType::Office365,
        region: Region::Worldwide,
        is_exchange_online: false,
        is_share_point_online: true,
        is_teams_online: false,
        exchange: None,
        share_point: Some(ConnectionInput {
            settings,
            secrets: ConnectionSecrets {
                application_secret: Some(Secret::new(t.app.client_secret.clone())),
                ..Default::default()
            },
        }),
    };
    let id = DEMO_ORGANIZATION;
    // The simulator has a new port at every start: point the organization at it.
    let action = match organizations.get(id).await {
        Ok(_) => {
            organizations
                .edit(id, input)
                .await
                .context("re-pointing the demo organization at the simulator")?;
            "Re-connected"
        }
        Err(CoreError::NotFound(_)) => {
            organizations
                .add_with_id(id, input)
                .await
                .context("registering the demo organization")?;
            "Registered"
        }
        Err(e) => return Err(e.into()),
    };
    println!(
        "Demo mode: simulated Microsoft 365 tenant '{}' at {}",
        t.domain,
        sim.base_url()
    );
    println!(
        "{action} organization {DEMO_ORGANIZATION_ID} ({}).",
        t.domain
    );
    if let Some(g) = t.group(DEMO_GROUP_ID) {
        println!(
            "Security group {DEMO_GROUP_ID} '{}'; its members and their demo passwords:",
            g.display_name
        );
        for &i in &g.members {
            let u = &t.users[i];
            println!(
                "  {:<40} {:<10} {}",
                u.user_principal_name, u.display_name, u.password
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use m365sim::Tenant;

    /// The founding document's accounts read every drive of the demo tenant but `site4`'s
    /// libraries and user50's OneDrive, which only the organization's own credentials read.
    #[test]
    fn the_demo_group_administers_everything_but_one_site_and_one_onedrive() {
        let t = Tenant::generate(&tenant_spec()).unwrap();
        let site4 = t.sites.iter().position(|s| s.name == "site4").unwrap();
        let (user50, _) = t.user(&format!("user50@{DEMO_DOMAIN}")).unwrap();
        let mut excepted: Vec<usize> = t.sites[site4].drives.clone();
        excepted.push(t.users[user50].drive);
        assert!(excepted.len() >= 2, "site4 has a library");
        let group = t.group(DEMO_GROUP_ID).unwrap();
        assert_eq!(group.members.len(), DEMO_ACCOUNTS);
        for &account in &group.members {
            let upn = &t.users[account].user_principal_name;
            assert!(upn.starts_with("account"), "{upn}");
            for (d, drive) in t.drives.iter().enumerate() {
                let expected = !excepted.contains(&d);
                assert_eq!(
                    t.can_read_drive(account, drive),
                    expected,
                    "{upn} on drive {} ({})",
                    drive.name,
                    drive.web_url
                );
            }
        }
        // The simulator's own backup accounts (backup1…) administer everything, the exceptions
        // included: they are not the accounts the demo configures.
        let backup = t.backup_accounts_group().unwrap();
        assert!(backup.members.iter().all(|&m| !group.members.contains(&m)));
        let backup1 = backup.members[0];
        assert!(t.drives.iter().all(|d| t.can_read_drive(backup1, d)));
    }
}
