//! `serve --demo`: the embedded tenant is registered at first start and re-connected on restart,
//! with the founding document's organization, group and account.

use crate::common;

use common::{json, Backend, TestServer};

const ORG: &str = "6f9b3da3-204d-4a4b-b466-55586e0233fc";
const GROUP: &str = "6e570850-9ce9-40ed-b81d-41772dabcead00000000-0000-0000-0000-000000000000";

async fn founding_group_is_listed(s: &TestServer) {
    let token = s.admin_token().await;
    let orgs = json(s.get("/v5/Organizations", &token).await).await;
    assert_eq!(orgs[0]["id"], ORG);
    assert_eq!(orgs[0]["name"], "office365.onmicrosoft.com");
    let group = json(
        s.get(&format!("/v5/Organizations/{ORG}/Groups/{GROUP}"), &token)
            .await,
    )
    .await;
    assert_eq!(group["type"], "Security");
    let members = json(
        s.get(
            &format!("/v5/organizations/{ORG}/groups/{GROUP}/members"),
            &token,
        )
        .await,
    )
    .await;
    let account1 = members["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["login"] == "account1@office365.onmicrosoft.com")
        .unwrap();
    assert_eq!(account1["name"], "tworker1");
    assert_eq!(account1["groupId"], GROUP);
    assert_eq!(account1["type"], "User");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_registers_the_founding_tenant_and_survives_restart() {
    let mut s = TestServer::start_with(Backend::Sqlite, |c| c.demo = true).await;
    founding_group_is_listed(&s).await;
    s.restart().await;
    founding_group_is_listed(&s).await;
    s.stop().await;
}
