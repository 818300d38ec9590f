//! Tenant generation and access rules.

use super::*;

#[test]
fn same_seed_same_tenant() {
    let spec = TenantSpec {
        users: 30,
        ..TenantSpec::default()
    };
    let (a, b) = (
        Tenant::generate(&spec).unwrap(),
        Tenant::generate(&spec).unwrap(),
    );
    assert_eq!(a.id, b.id);
    assert_eq!(
        a.users.iter().map(|u| u.id).collect::<Vec<_>>(),
        b.users.iter().map(|u| u.id).collect::<Vec<_>>()
    );
    assert_eq!(a.drives[3].id, b.drives[3].id);
    let other = Tenant::generate(&TenantSpec { seed: 2, ..spec }).unwrap();
    assert_ne!(a.id, other.id);
}

#[test]
fn sizes_and_backup_group() {
    let spec = TenantSpec {
        users: 30,
        backup_accounts: 5,
        sites: 2,
        libraries_per_site: 2,
        ..TenantSpec::default()
    };
    let t = Tenant::generate(&spec).unwrap();
    assert_eq!(t.users.len(), 35);
    assert_eq!(t.backup_accounts_group().unwrap().members.len(), 5);
    assert_eq!(t.drives.len(), 35 + 4);
    let files = t.drives[0]
        .state
        .read()
        .unwrap()
        .items
        .iter()
        .filter(|i| i.file.is_some())
        .count();
    assert_eq!(files, spec.files_per_drive);
    assert!(t.user("USER1@contoso1.onmicrosoft.com").is_some());
}

#[test]
fn tenant_files_in_toml_and_json() {
    let dir = std::env::temp_dir().join(format!("m365sim-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml_path = dir.join("t.toml");
    std::fs::write(&toml_path, "seed = 9\nusers = 4\ndomain = \"fabrikam.onmicrosoft.com\"\n[[extra_groups]]\ndisplay_name = \"Ops\"\nkind = \"security\"\nmembers = [\"user2@fabrikam.onmicrosoft.com\"]\n").unwrap();
    let spec = TenantSpec::from_file(&toml_path).unwrap();
    assert_eq!((spec.seed, spec.users), (9, 4));
    let json_path = dir.join("t.json");
    std::fs::write(&json_path, serde_json::to_string(&spec).unwrap()).unwrap();
    let again = TenantSpec::from_file(&json_path).unwrap();
    let t = Tenant::generate(&again).unwrap();
    assert_eq!(t.domain, "fabrikam.onmicrosoft.com");
    assert_eq!(
        t.groups
            .iter()
            .find(|g| g.display_name == "Ops")
            .unwrap()
            .members
            .len(),
        1
    );
    std::fs::write(&json_path, r#"{"usres": 3}"#).unwrap();
    assert!(
        TenantSpec::from_file(&json_path).is_err(),
        "typos are errors"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn extras_with_fixed_ids() {
    let gid: Uuid = "6e570850-9ce9-40ed-b81d-41772dabcead".parse().unwrap();
    let spec = TenantSpec {
        users: 2,
        extra_users: vec![UserSpec {
            id: None,
            user_principal_name: "account1@office365.onmicrosoft.com".into(),
            display_name: "tworker1".into(),
            password: "XXXXX".into(),
            account_enabled: true,
        }],
        extra_groups: vec![GroupSpec {
            id: Some(gid),
            display_name: "Workers".into(),
            kind: GroupKind::Security,
            members: vec![
                "account1@office365.onmicrosoft.com".into(),
                "user1@contoso1.onmicrosoft.com".into(),
            ],
        }],
        ..TenantSpec::default()
    };
    let t = Tenant::generate(&spec).unwrap();
    let g = t.group(&gid.to_string()).unwrap();
    assert_eq!(g.members.len(), 2);
    assert_eq!(t.users[g.members[0]].display_name, "tworker1");
}
