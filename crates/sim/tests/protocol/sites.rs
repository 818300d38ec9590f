//! Sites as a backup finds them: site collections in `getAllSites` (with the `root` facet), their
//! sub-sites through `/sites/{id}/sites` (reachable by id, with libraries of their own), several
//! libraries per site with Graph's drive fields, and each Microsoft 365 group's team site.

use serde_json::Value;

use super::*;

fn spec_with_subsites() -> TenantSpec {
    TenantSpec {
        users: 10,
        sites: 2,
        libraries_per_site: 3,
        subsites_per_site: 2,
        files_per_drive: 3,
        ..spec()
    }
}

fn ids(values: &[Value]) -> Vec<String> {
    values
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn subsites_are_found_under_their_site_with_their_own_libraries() {
    let sim = start_spec(spec_with_subsites(), unthrottled()).await;
    let app = app_client(&sim).await;
    let (all, _) = app.all("/sites/getAllSites?$top=5").await;
    let t = sim.tenant();
    let subsite_ids: Vec<&str> = t
        .sites
        .iter()
        .filter(|s| s.parent.is_some())
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(
        subsite_ids.len(),
        2 * 3,
        "two per site, the first with one more"
    );
    assert!(
        all.iter().all(|s| s.get("root").is_some()),
        "getAllSites lists site collections' root sites"
    );
    assert!(ids(&all)
        .iter()
        .all(|id| !subsite_ids.contains(&id.as_str())));
    assert_eq!(
        all.iter().filter(|s| s["isPersonalSite"] == false).count(),
        2 + 2,
        "two sites and two group sites"
    );

    // Sub-sites of site1, recursively: Projects (with Old Projects) and Finance.
    let site1 = &t.sites.iter().find(|s| s.name == "site1").unwrap().id;
    let (subs, _) = app.all(&format!("/sites/{site1}/sites")).await;
    let names: Vec<&str> = subs.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["projects", "finance"]);
    assert!(subs
        .iter()
        .all(|s| s.get("root").is_none() && s["isPersonalSite"] == false));
    let projects = subs[0]["id"].as_str().unwrap();
    let (nested, _) = app.all(&format!("/sites/{projects}/sites")).await;
    assert_eq!(nested.len(), 1);
    assert!(nested[0]["webUrl"]
        .as_str()
        .unwrap()
        .ends_with("/sites/site1/projects/old-projects"));
    let finance = subs[1]["id"].as_str().unwrap();
    assert!(app
        .all(&format!("/sites/{finance}/sites"))
        .await
        .0
        .is_empty());

    // A sub-site by id, and its own libraries with Graph's fields.
    let got = app.get(&format!("/sites/{projects}")).await;
    assert_eq!(got["displayName"], subs[0]["displayName"]);
    let (drives, _) = app.all(&format!("/sites/{projects}/drives")).await;
    assert_eq!(drives.len(), 3);
    for d in &drives {
        for key in ["id", "name", "description", "createdDateTime", "webUrl"] {
            assert!(d.get(key).is_some(), "{key} in {d}");
        }
        assert_eq!(d["driveType"], "documentLibrary");
    }
    assert_eq!(drives[0]["name"], "Documents");
    assert!(drives[0]["webUrl"]
        .as_str()
        .unwrap()
        .ends_with("/sites/site1/projects/Shared%20Documents"));
    assert_eq!(drives[1]["name"], "Contracts");
    let parent_drives = ids(&app.all(&format!("/sites/{site1}/drives")).await.0);
    assert!(ids(&drives).iter().all(|d| !parent_drives.contains(d)));
    // The default library, and the library's content.
    assert_eq!(
        app.get(&format!("/sites/{projects}/drive")).await["id"],
        drives[0]["id"]
    );
    let (items, _) = app
        .all(&format!(
            "/drives/{}/root/delta",
            drives[2]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(items.iter().filter(|i| i.get("file").is_some()).count(), 3);

    // A site search finds sub-sites too; a personal site has none.
    let backup = sign_in(&sim, "backup1@contoso42.onmicrosoft.com").await;
    let (found, _) = backup.all("/sites?search=*").await;
    assert!(subsite_ids
        .iter()
        .all(|id| ids(&found).contains(&id.to_string())));
    let personal = &t.users[0].personal_site.id;
    assert!(app
        .all(&format!("/sites/{personal}/sites"))
        .await
        .0
        .is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_subsite_is_readable_by_its_parents_people_only() {
    let sim = start_spec(spec_with_subsites(), unthrottled()).await;
    let t = sim.tenant();
    let site1 = t.sites.iter().find(|s| s.name == "site1").unwrap();
    let sub = &t.sites[site1.subsites[0]];
    let member = &t.users[site1.members[0]].user_principal_name;
    let outsider = t
        .users
        .iter()
        .enumerate()
        .find(|(i, u)| {
            !site1.members.contains(i)
                && !site1.owners.contains(i)
                && u.user_principal_name.starts_with("user")
        })
        .unwrap()
        .1
        .user_principal_name
        .clone();
    let m = sign_in(&sim, member).await;
    assert_eq!(
        m.get_raw(&format!("/sites/{}/drives", sub.id))
            .await
            .status(),
        200
    );
    let o = sign_in(&sim, &outsider).await;
    let r = o.get_raw(&format!("/sites/{}/drives", sub.id)).await;
    assert_eq!(graph_error(r).await.0, 403);
    // The backup accounts administer the site collection, sub-sites included.
    let b = sign_in(&sim, "backup2@contoso42.onmicrosoft.com").await;
    assert_eq!(
        b.get_raw(&format!("/sites/{}/sites", sub.id))
            .await
            .status(),
        200
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn every_microsoft_365_group_has_its_team_site() {
    let sim = start(unthrottled()).await;
    let app = app_client(&sim).await;
    let (unified, _) = app
        .all("/groups?$filter=groupTypes/any(c:c%20eq%20'Unified')")
        .await;
    assert_eq!(unified.len(), 2);
    let (all, _) = app.all("/sites/getAllSites").await;
    for g in &unified {
        let gid = g["id"].as_str().unwrap();
        let site = app.get(&format!("/groups/{gid}/sites/root")).await;
        assert!(site["webUrl"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/sites/{}", g["mailNickname"].as_str().unwrap())));
        assert_eq!(site["displayName"], g["displayName"]);
        assert!(site.get("root").is_some());
        assert!(ids(&all).contains(&site["id"].as_str().unwrap().to_owned()));
        let drive = app.get(&format!("/groups/{gid}/drive")).await;
        assert_eq!(drive["driveType"], "documentLibrary");
        let by_site = app
            .get(&format!("/sites/{}/drives", site["id"].as_str().unwrap()))
            .await;
        assert_eq!(by_site["value"][0]["id"], drive["id"]);
    }
    // A security group has no site.
    let security = app.get("/groups?$filter=securityEnabled%20eq%20true").await;
    let sg = security["value"][0]["id"].as_str().unwrap();
    let (status, code, _) =
        graph_error(app.get_raw(&format!("/groups/{sg}/sites/root")).await).await;
    assert_eq!((status, code.as_str()), (404, "itemNotFound"));
    sim.shutdown().await;
}
