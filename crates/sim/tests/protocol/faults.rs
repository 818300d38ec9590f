//! Injected per-item faults, set over the control API and in-process: content that vanished
//! (404), a locked file (423), a download cut mid-body; permanent or for the next K requests,
//! on every version or on one.

use reqwest::Method;
use serde_json::json;

use super::*;
use m365sim::{FaultKind, ItemFault};

/// A OneDrive with two fresh files (the second with two versions) and its owner signed in.
async fn setup(sim: &RunningSim) -> (String, String, String, Client) {
    let d = sim.onedrive("user1@contoso42.onmicrosoft.com").unwrap();
    let a = d.add_file(None, "a.bin", 200_000).unwrap();
    let b = d.add_file(None, "b.bin", 1_000).unwrap();
    d.modify_file(&b, 2_000).unwrap();
    let c = sign_in(sim, "user1@contoso42.onmicrosoft.com").await;
    (d.id().to_owned(), a, b, c)
}

#[tokio::test]
async fn vanished_and_locked_content_for_the_next_k_requests_or_until_cleared() {
    let sim = start(unthrottled()).await;
    let (drive, a, b, c) = setup(&sim).await;
    let content = |item: &str| format!("/drives/{drive}/items/{item}/content");

    // Over HTTP: a gone for the next two requests (at /content and at the download URL).
    let r = control(
        &sim,
        Method::PUT,
        &format!("drives/{drive}/items/{a}/fault"),
        Some(json!({"kind": "notFound", "times": 2})),
    )
    .await;
    assert_eq!(r.status(), 204);
    let listed: Value = control(&sim, Method::GET, "faults", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["kind"], "notFound");
    assert_eq!(listed["items"][0]["times"], 2);
    let (status, code, _) = graph_error(c.get_raw(&content(&a)).await).await;
    assert_eq!((status, code.as_str()), (404, "itemNotFound"));
    // The item itself is still listed: only its content vanished.
    assert_eq!(
        c.get_raw(&format!("/drives/{drive}/items/{a}"))
            .await
            .status(),
        200
    );
    let item = c.get(&format!("/drives/{drive}/items/{a}")).await;
    let url = item["@microsoft.graph.downloadUrl"].as_str().unwrap();
    assert_eq!(reqwest::get(url).await.unwrap().status(), 404, "second use");
    assert_eq!(c.download(&content(&a)).await.status(), 200, "used up");

    // In-process: b locked until cleared, on every version.
    let d = sim.drive(&drive).unwrap();
    d.inject_fault(&b, ItemFault::permanent(FaultKind::Locked));
    for _ in 0..3 {
        let (status, code, inner) = graph_error(c.get_raw(&content(&b)).await).await;
        assert_eq!(
            (status, code.as_str(), inner.as_str()),
            (423, "resourceLocked", "lockMismatch")
        );
    }
    let old = format!("/drives/{drive}/items/{b}/versions/1.0/content");
    assert_eq!(graph_error(c.get_raw(&old).await).await.0, 423);
    d.clear_faults(Some(&b));
    assert_eq!(c.download(&content(&b)).await.status(), 200);

    // One version only: the old one vanished, the current one downloads.
    d.inject_fault(&b, ItemFault::permanent(FaultKind::NotFound).on_version(1));
    assert_eq!(graph_error(c.get_raw(&old).await).await.0, 404);
    assert_eq!(c.download(&content(&b)).await.status(), 200);
    let r = control(
        &sim,
        Method::DELETE,
        &format!("drives/{drive}/faults"),
        None,
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(c.download(&old).await.status(), 200);
    assert!(sim.control().faults().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_download_cut_mid_body_then_whole() {
    let sim = start(unthrottled()).await;
    let (drive, a, _, c) = setup(&sim).await;
    let d = sim.drive(&drive).unwrap();
    d.inject_fault(
        &a,
        ItemFault::times(
            FaultKind::Cut {
                after_bytes: 70_000,
            },
            1,
        ),
    );
    let content = format!("/drives/{drive}/items/{a}/content");
    // /content itself redirects: the cut is in the stream.
    let r = c.download(&content).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_length(), Some(200_000), "the whole is promised");
    let mut got = 0usize;
    let mut stream = r.bytes_stream();
    let mut broke = false;
    use futures_util::StreamExt;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(b) => got += b.len(),
            Err(_) => {
                broke = true;
                break;
            }
        }
    }
    assert!(broke, "the body ends in an error");
    assert_eq!(got, 70_000);
    // The next download is whole and right.
    let bytes = c.download(&content).await.bytes().await.unwrap();
    assert_eq!(sha256(&bytes), d.entry(&a).unwrap().sha256().unwrap());
    // A cut with a Range: the bytes before the cut are the file's.
    d.inject_fault(&a, ItemFault::times(FaultKind::Cut { after_bytes: 10 }, 1));
    let item = c.get(&format!("/drives/{drive}/items/{a}")).await;
    let part = reqwest::Client::new()
        .get(item["@microsoft.graph.downloadUrl"].as_str().unwrap())
        .header("range", "bytes=100-")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert!(part.bytes().await.is_err());
    sim.shutdown().await;
}
