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
    // OneDrives, two sites' and two Microsoft 365 groups' sites' two libraries each.
    assert_eq!(t.drives.len(), 35 + 4 + 4);
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

#[test]
fn sites_have_subsites_libraries_and_groups_their_team_sites() {
    let spec = TenantSpec {
        users: 12,
        sites: 2,
        libraries_per_site: 3,
        subsites_per_site: 2,
        m365_groups: 2,
        ..TenantSpec::default()
    };
    let t = Tenant::generate(&spec).unwrap();
    let top: Vec<&Site> = t
        .sites
        .iter()
        .filter(|s| s.parent.is_none() && s.group.is_none())
        .collect();
    assert_eq!(top.len(), 2);
    // Each top-level site: two sub-sites, the first with one of its own.
    let s1 = &t.sites[t
        .site(&top[0].id)
        .map(|s| match s {
            SiteRef::Team(i) => i,
            SiteRef::Personal(_) => unreachable!(),
        })
        .unwrap()];
    assert_eq!(s1.subsites.len(), 2);
    let first = &t.sites[s1.subsites[0]];
    assert_eq!(first.subsites.len(), 1);
    assert!(first.web_url.starts_with(&s1.web_url));
    assert_eq!(
        first.id.split(',').nth(1),
        s1.id.split(',').nth(1),
        "a sub-site belongs to its parent's site collection"
    );
    assert_eq!(
        (first.owners.clone(), first.admins.clone()),
        (s1.owners.clone(), s1.admins.clone())
    );
    assert_eq!(t.sites.len(), 2 * (1 + 3) + 2);
    // Libraries: Documents at Shared Documents, then named ones, on every site.
    assert!(t.sites.iter().all(|s| s.drives.len() == 3));
    let docs = &t.drives[s1.drives[0]];
    assert_eq!(docs.name, "Documents");
    assert!(docs.web_url.ends_with("/Shared%20Documents"));
    assert_eq!(
        docs.state.read().unwrap().base_path,
        "/sites/site1/Shared Documents"
    );
    assert_eq!(t.drives[s1.drives[1]].name, "Contracts");
    // Every Microsoft 365 group has its team site, its members the site's members.
    for g in t
        .groups
        .iter()
        .filter(|g| g.kind == GroupKind::Microsoft365)
    {
        let site = &t.sites[g.site.unwrap()];
        assert_eq!(site.members, g.members);
        assert_eq!(site.name, g.mail_nickname);
    }
    assert!(t
        .groups
        .iter()
        .filter(|g| g.kind != GroupKind::Microsoft365)
        .all(|g| g.site.is_none()));
    // Deterministic, and the first sites' drives do not move when sub-sites are added.
    let again = Tenant::generate(&spec).unwrap();
    assert_eq!(
        t.sites.iter().map(|s| &s.id).collect::<Vec<_>>(),
        again.sites.iter().map(|s| &s.id).collect::<Vec<_>>()
    );
    let plain = Tenant::generate(&TenantSpec {
        subsites_per_site: 0,
        ..spec.clone()
    })
    .unwrap();
    assert_eq!(plain.drives[0].id, t.drives[0].id);
    let names = |t: &Tenant| -> Vec<String> {
        t.drives[0]
            .state
            .read()
            .unwrap()
            .items
            .iter()
            .map(|i| i.name.clone())
            .collect()
    };
    assert_eq!(names(&plain), names(&t));
}

#[test]
fn large_files_on_every_drive() {
    let spec = TenantSpec {
        users: 2,
        backup_accounts: 0,
        sites: 1,
        m365_groups: 0,
        large_files_per_drive: 2,
        large_file_min_size: 50 << 20,
        large_file_max_size: 500 << 20,
        ..TenantSpec::default()
    };
    let t = Tenant::generate(&spec).unwrap();
    for d in &t.drives {
        let state = d.state.read().unwrap();
        let large: Vec<u64> = state
            .items
            .iter()
            .filter_map(|i| i.file.map(|f| f.size))
            .filter(|&s| s >= 50 << 20)
            .collect();
        assert_eq!(large.len(), 2, "{}", d.name);
        assert!(large.iter().all(|&s| s <= 500 << 20));
    }
}

#[test]
fn generated_paths_are_long_but_within_the_limit() {
    let spec = TenantSpec {
        users: 4,
        backup_accounts: 1,
        sites: 2,
        folders_per_drive: 12,
        files_per_drive: 30,
        ..TenantSpec::default()
    };
    let t = Tenant::generate(&spec).unwrap();
    let mut longest = (0, String::new());
    for d in &t.drives {
        let state = d.state.read().unwrap();
        for (i, item) in state.items.iter().enumerate() {
            if item.deleted || item.parent.is_none() {
                continue;
            }
            // What OneDrive counts: the library's site-relative path, then the item's.
            let full = format!("{}{}", state.base_path, state.path(i));
            let chars = full.chars().count();
            assert!(chars <= MAX_PATH_CHARS, "{chars} characters: {full}");
            if chars > longest.0 {
                longest = (chars, full);
            }
        }
    }
    assert!(longest.0 > 200, "the longest path: {longest:?}");
}
