//! The Microsoft 365 client against m365sim: sign-in errors typed, tokens cached, paging
//! followed, Retry-After honoured, decorated User-Agent.

use std::time::{Duration, Instant};

use m365backup_core::Secret;
use m365backup_m365::graph::RetryPolicy;
use m365backup_m365::{Credentials, Endpoints, GraphClient, M365Error};
use m365sim::{RunningSim, SimConfig, TenantSpec, ThrottleConfig};

async fn sim(throttling: ThrottleConfig) -> RunningSim {
    let config = SimConfig {
        tenant: TenantSpec {
            seed: 3,
            users: 1500,
            files_per_drive: 0,
            ..TenantSpec::default()
        },
        throttling,
        ..SimConfig::default()
    };
    m365sim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn endpoints(sim: &RunningSim) -> Endpoints {
    Endpoints {
        authority: sim.base_url().to_owned(),
        graph: sim.graph_url(),
    }
}

fn app(sim: &RunningSim, secret: &str) -> Credentials {
    let t = sim.tenant();
    Credentials::AppSecret {
        tenant: t.domain.clone(),
        client_id: t.app.client_id.to_string(),
        client_secret: Secret::new(secret),
    }
}

fn user(sim: &RunningSim, upn: &str, password: &str) -> Credentials {
    let t = sim.tenant();
    Credentials::Password {
        tenant: t.id.to_string(),
        client_id: t.app.client_id.to_string(),
        client_secret: None,
        username: upn.into(),
        password: Secret::new(password),
    }
}

#[tokio::test]
async fn sign_in_errors_are_typed_with_microsofts_reason() {
    let sim = sim(ThrottleConfig {
        enabled: false,
        ..Default::default()
    })
    .await;
    let client = GraphClient::new(
        endpoints(&sim),
        user(&sim, "user1@contoso3.onmicrosoft.com", "bad"),
    )
    .unwrap();
    match client.tokens().sign_in().await {
        Err(M365Error::SignIn {
            error,
            description,
            codes,
        }) => {
            assert_eq!(error, "invalid_grant");
            assert_eq!(codes, vec![50126]);
            assert!(description.starts_with("AADSTS50126: Error validating credentials"));
            assert!(
                !description.contains("Trace ID"),
                "trace ids are cut: {description}"
            );
        }
        other => panic!("{other:?}"),
    }
    let client = GraphClient::new(endpoints(&sim), app(&sim, "bad")).unwrap();
    assert!(
        matches!(client.tenant_info().await, Err(M365Error::SignIn { codes, .. }) if codes == vec![7000215])
    );
    let nowhere = Endpoints {
        authority: "http://127.0.0.1:9".into(),
        graph: "http://127.0.0.1:9/v1.0".into(),
    };
    let client = GraphClient::new(nowhere, app(&sim, "x")).unwrap();
    assert!(matches!(
        client.tenant_info().await,
        Err(M365Error::Unreachable { .. })
    ));
    sim.shutdown().await;
}

#[tokio::test]
async fn pages_are_followed_and_tokens_reused() {
    let sim = sim(ThrottleConfig {
        enabled: false,
        ..Default::default()
    })
    .await;
    let secret = sim.tenant().app.client_secret.clone();
    let client = GraphClient::new(endpoints(&sim), app(&sim, &secret)).unwrap();
    let users = client.users().await.unwrap();
    assert_eq!(
        users.len(),
        sim.tenant().users.len(),
        "1500+ users over two Graph pages"
    );
    let first = client.tokens().token().await.unwrap();
    let again = client.tokens().token().await.unwrap();
    assert_eq!(first, again, "the cached token is reused");
    let members = client
        .group_members(
            &sim.tenant()
                .groups
                .iter()
                .find(|g| g.display_name == "All Staff")
                .unwrap()
                .id
                .to_string(),
        )
        .await
        .unwrap();
    assert_eq!(members.len(), 1500);
    assert!(
        matches!(client.group("00000000-0000-0000-0000-000000000001").await, Err(e) if e.is_not_found())
    );
    assert!(m365backup_m365::USER_AGENT.starts_with("ISV|m365backup|m365backup/"));
    sim.shutdown().await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let throttling = ThrottleConfig {
        user_rate: 1.0,
        user_burst: 1.0,
        app_rate: 1.0,
        app_burst: 2.0,
        extension_secs: 0.0,
        ..Default::default()
    };
    let sim = sim(throttling).await;
    let secret = sim.tenant().app.client_secret.clone();
    let client = GraphClient::new(endpoints(&sim), app(&sim, &secret)).unwrap();
    let t0 = Instant::now();
    for _ in 0..4 {
        client.tenant_info().await.unwrap();
    }
    // Two in the burst, then one per second: the client waited as told instead of failing.
    assert!(
        t0.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        t0.elapsed()
    );
    // With retries off, the throttle surfaces with its Retry-After.
    let impatient = GraphClient::new(endpoints(&sim), app(&sim, &secret))
        .unwrap()
        .with_retry(RetryPolicy {
            throttle_retries: 0,
            ..Default::default()
        });
    let mut saw = None;
    for _ in 0..3 {
        if let Err(M365Error::Throttled {
            retry_after,
            status,
        }) = impatient.tenant_info().await
        {
            saw = Some((retry_after, status));
        }
    }
    let (retry_after, status) = saw.expect("throttled");
    assert_eq!(status, 429);
    assert!(retry_after >= Duration::from_secs(1));
    sim.shutdown().await;
}

#[tokio::test]
async fn tokens_are_shared_by_clients_of_the_same_credentials_until_refused() {
    let sim = sim(ThrottleConfig {
        enabled: false,
        ..Default::default()
    })
    .await;
    let secret = sim.tenant().app.client_secret.clone();
    let issued = || sim.sim().tokens.issued();
    let before = issued();
    // A run builds new clients for the same credentials: the process's token serves them all.
    for _ in 0..3 {
        let client = GraphClient::new(endpoints(&sim), app(&sim, &secret)).unwrap();
        client.tenant_info().await.unwrap();
    }
    assert_eq!(issued() - before, 1, "one sign-in for three clients");
    // Other credentials are other tokens: a wrong secret never gets the right one's token.
    let wrong = GraphClient::new(endpoints(&sim), app(&sim, "wrong")).unwrap();
    assert!(matches!(
        wrong.tenant_info().await,
        Err(M365Error::SignIn { .. })
    ));
    // Graph forgets the token (revoked, or another sim on the same port): a 401, one new
    // sign-in, the call succeeds, and the new token is shared again.
    sim.sim().tokens.revoke_all();
    let client = GraphClient::new(endpoints(&sim), app(&sim, &secret)).unwrap();
    let raw = client.get_once("/organization").await.unwrap();
    assert!(raw.status().is_success(), "sent again with a new token");
    assert_eq!(issued() - before, 2, "one sign-in after the refusal");
    sim.sim().tokens.revoke_all();
    client.tenant_info().await.unwrap();
    assert_eq!(issued() - before, 3);
    let other = GraphClient::new(endpoints(&sim), app(&sim, &secret)).unwrap();
    other.tenant_info().await.unwrap();
    assert_eq!(issued() - before, 3);
    sim.shutdown().await;
}
