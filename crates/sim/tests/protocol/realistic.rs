//! The realistic throttling profile over HTTP: no `RateLimit-*` for delegated calls, headers for
//! app-only ones, `throttledRequest` bodies with the client's request id, waits that grow for a
//! caller that keeps sending.

use serde_json::Value;

use super::*;

fn realistic() -> ThrottleConfig {
    // Windows 1/100 of Microsoft's: 30 requests per 3 s per user, the app 12.5 units per 0.6 s.
    ThrottleConfig {
        max_retry_after_secs: 2_000.0,
        ..ThrottleConfig::realistic(0.01)
    }
}

#[tokio::test]
async fn delegated_calls_get_no_ratelimit_headers_and_throttles_name_themselves() {
    let sim = start(realistic()).await;
    let user = sign_in(&sim, "user5@contoso42.onmicrosoft.com").await;
    let mut first_429 = None;
    for _ in 0..40 {
        let r = user
            .http
            .get(format!("{}/organization", user.base))
            .bearer_auth(&user.token)
            .header("client-request-id", "7d2f3c1e-0000-4000-8000-000000000042")
            .send()
            .await
            .unwrap();
        assert!(r.headers().get("ratelimit-remaining").is_none());
        assert_eq!(
            r.headers()["client-request-id"],
            "7d2f3c1e-0000-4000-8000-000000000042"
        );
        if r.status() == 429 {
            first_429 = Some(r);
            break;
        }
    }
    let r = first_429.expect("the app's minute budget runs out");
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "activityLimitReached");
    assert_eq!(body["error"]["innerError"]["code"], "throttledRequest");
    assert_eq!(
        body["error"]["innerError"]["client-request-id"],
        "7d2f3c1e-0000-4000-8000-000000000042"
    );
    // Keeping on sending: the wait grows.
    let mut waits = Vec::new();
    for _ in 0..6 {
        let r = user.get_raw("/organization").await;
        assert_eq!(r.status(), 429);
        waits.push(
            r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap(),
        );
    }
    assert!(waits[5] > waits[0] && waits[5] >= 8, "{waits:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn app_only_calls_read_the_apps_minute_budget() {
    let sim = start(realistic()).await;
    let app = app_client(&sim).await;
    let mut readings = Vec::new();
    for _ in 0..14 {
        let r = app.get_raw("/organization").await;
        if r.status() != 200 {
            break;
        }
        if let Some(rem) = r.headers().get("ratelimit-remaining") {
            let limit = r.headers()["ratelimit-limit"].to_str().unwrap().to_owned();
            readings.push((limit, rem.to_str().unwrap().to_owned()));
        }
    }
    // 12.5 units per 0.6 s: headers from 80 % (10 units) on.
    assert_eq!(readings.first().map(|r| r.0.as_str()), Some("13"));
    assert!(!readings.is_empty() && readings.len() <= 4, "{readings:?}");
    sim.shutdown().await;
}
