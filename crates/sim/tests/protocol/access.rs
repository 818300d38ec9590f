//! Access as a real tenant grants it: a delegated token reads its own OneDrive, the sites its
//! user belongs to and whatever its user or groups administer; site discovery for the app.

use serde_json::Value;

use super::*;
use m365sim::tenant::AdminGrant;

fn restricted() -> TenantSpec {
    TenantSpec {
        users: 6,
        site_admins: Some(vec![AdminGrant {
            except_sites: vec!["site2".into()],
            except_onedrives: vec!["user3@contoso42.onmicrosoft.com".into()],
            ..AdminGrant::everywhere("Backup Accounts")
        }]),
        ..spec()
    }
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_delegated_token_reads_only_what_its_user_may() {
    let sim = start_spec(restricted(), unthrottled()).await;
    let t = sim.tenant();
    let backup = sign_in(&sim, "backup1@contoso42.onmicrosoft.com").await;
    let site_id = |name: &str| t.sites.iter().find(|s| s.name == name).unwrap().id.clone();
    let onedrive = |upn: &str| t.drives[t.user(upn).unwrap().1.drive].id.clone();

    // The backup accounts' group administers everything but site2 and user3's OneDrive.
    assert_eq!(
        backup
            .get_raw(&format!("/sites/{}/drives", site_id("site1")))
            .await
            .status(),
        200
    );
    assert_eq!(
        backup
            .get_raw(&format!(
                "/drives/{}/root/delta",
                onedrive("user2@contoso42.onmicrosoft.com")
            ))
            .await
            .status(),
        200
    );
    for path in [
        format!("/sites/{}/drives", site_id("site2")),
        format!(
            "/drives/{}/root/delta",
            onedrive("user3@contoso42.onmicrosoft.com")
        ),
        "/users/user3@contoso42.onmicrosoft.com/drive".to_owned(),
    ] {
        let r = backup.get_raw(&path).await;
        assert_eq!(r.status(), 403, "{path}");
        assert_eq!(code(&r.json().await.unwrap()), "accessDenied");
    }
    let searched: Vec<String> = backup
        .all("/sites?search=*")
        .await
        .0
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(!searched.contains(&"site2".to_owned()) && searched.contains(&"site1".to_owned()));

    // A user reads its own OneDrive and the sites it is a member of, not others'.
    let user3 = sign_in(&sim, "user3@contoso42.onmicrosoft.com").await;
    assert_eq!(
        user3
            .get_raw(&format!(
                "/drives/{}/root",
                onedrive("user3@contoso42.onmicrosoft.com")
            ))
            .await
            .status(),
        200
    );
    assert_eq!(
        user3
            .get_raw(&format!(
                "/drives/{}/root",
                onedrive("user4@contoso42.onmicrosoft.com")
            ))
            .await
            .status(),
        403
    );
    let site2 = t.sites.iter().find(|s| s.name == "site2").unwrap();
    let member = site2
        .members
        .first()
        .or(site2.owners.first())
        .copied()
        .unwrap();
    let member = sign_in(&sim, &t.users[member].user_principal_name).await;
    assert_eq!(
        member
            .get_raw(&format!("/drives/{}/root", t.drives[site2.drives[0]].id))
            .await
            .status(),
        200
    );

    // The app reads everything, and alone may list every site, personal sites included.
    let app = app_client(&sim).await;
    assert_eq!(
        app.get_raw(&format!("/sites/{}/drives", site_id("site2")))
            .await
            .status(),
        200
    );
    let (all, _) = app.all("/sites/getAllSites?$top=5").await;
    assert_eq!(all.len(), t.sites.len() + t.users.len());
    let personal: Vec<&Value> = all.iter().filter(|s| s["isPersonalSite"] == true).collect();
    assert_eq!(personal.len(), t.users.len());
    let drives = app
        .get(&format!(
            "/sites/{}/drives",
            personal[0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(drives["value"][0]["driveType"], "business");
    let r = backup.get_raw("/sites/getAllSites").await;
    assert_eq!(r.status(), 403, "application permissions only");
    sim.shutdown().await;
}

#[test]
fn tenant_files_name_who_administers_what() {
    let spec: TenantSpec = toml::from_str(
        r#"
        users = 3
        [[site_admins]]
        principal = "Backup Accounts"
        sites = ["*"]
        onedrives = ["user1@contoso1.onmicrosoft.com"]
        except_sites = ["site3"]
        "#,
    )
    .unwrap();
    let t = m365sim::Tenant::generate(&spec).unwrap();
    let (b, _) = t.user("backup1@contoso1.onmicrosoft.com").unwrap();
    let readable: Vec<&str> = t
        .drives
        .iter()
        .filter(|d| t.can_read_drive(b, d))
        .map(|d| d.web_url.as_str())
        .collect();
    assert!(readable.iter().any(|u| u.contains("/sites/site1/")));
    assert!(!readable.iter().any(|u| u.contains("/sites/site3/")));
    assert!(readable.iter().any(|u| u.contains("/personal/user1/")));
    assert!(!readable.iter().any(|u| u.contains("/personal/user2/")));
    let bad: Result<TenantSpec, _> =
        toml::from_str("[[site_admins]]\nprincipal = \"x\"\nsitez = []\n");
    assert!(bad.is_err(), "typos are errors");
    let unknown = TenantSpec {
        site_admins: Some(vec![AdminGrant::everywhere("Nobody")]),
        ..TenantSpec::default()
    };
    assert!(m365sim::Tenant::generate(&unknown).is_err());
}
