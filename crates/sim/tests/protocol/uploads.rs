//! Uploads as OneDrive for Business takes them: simple uploads (new, replace, rename, fail, by
//! path creating folders, the size limit, ingress), and upload sessions (`Content-Range`
//! fragments, `202` with `nextExpectedRanges`, status, resume, overlap and order errors, the
//! 320 KiB rule, no bearer on the upload URL, cancel, expiry, `deferCommit`, an existing file).

use reqwest::Method;
use serde_json::json;

use super::*;

const UNIT: usize = 320 << 10;

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
}

async fn setup(sim: &RunningSim) -> (String, Client) {
    let upn = "user1@contoso42.onmicrosoft.com";
    let drive = sim.onedrive(upn).unwrap().id().to_owned();
    (drive, sign_in(sim, upn).await)
}

#[tokio::test]
async fn simple_uploads_with_every_conflict_behaviour() {
    let sim = start(unthrottled()).await;
    let (drive, c) = setup(&sim).await;
    let d = sim.drive(&drive).unwrap();
    let root = d.root_id();
    let put = |path: &str| format!("/drives/{drive}/items/{root}:/{path}:/content");
    let (_, before) = c.all(&format!("/drives/{drive}/root/delta")).await;
    let link = before["@odata.deltaLink"].as_str().unwrap().to_owned();

    let first = c.put_bytes(&put("report.docx"), pattern(5_000, 1)).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["size"], 5_000);
    assert_eq!(
        first["file"]["hashes"]["quickXorHash"],
        quickxorhash::base64_of(&pattern(5_000, 1))
    );
    let id = first["id"].as_str().unwrap().to_owned();
    // replace (PUT's default): the same item, a new version.
    let second = c.put_bytes(&put("Report.docx"), pattern(6_000, 2)).await;
    assert_eq!(second.status(), 200);
    assert_eq!(second.json::<Value>().await.unwrap()["id"], id.as_str());
    assert_eq!(d.versions(&id).unwrap().len(), 2);
    assert_eq!(
        d.content(&id, None).unwrap().read_all().unwrap(),
        pattern(6_000, 2)
    );
    // rename, fail.
    let renamed: Value = c
        .put_bytes(
            &format!(
                "{}?@microsoft.graph.conflictBehavior=rename",
                put("report.docx")
            ),
            pattern(10, 3),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(renamed["name"], "report 1.docx");
    let r = c
        .put_bytes(
            &format!(
                "{}?@microsoft.graph.conflictBehavior=fail",
                put("report.docx")
            ),
            pattern(10, 3),
        )
        .await;
    assert_eq!(graph_error(r).await.1, "nameAlreadyExists");
    // By id: new content for an existing file.
    let r = c
        .put_bytes(
            &format!("/drives/{drive}/items/{id}/content"),
            b"by id".to_vec(),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(d.content(&id, None).unwrap().read_all().unwrap(), b"by id");
    // By path from the root: missing folders are created.
    let deep: Value = c
        .put_bytes(
            &format!("/drives/{drive}/root:/New/Deeper/x.bin:/content"),
            pattern(100, 4),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(deep["parentReference"]["path"], "/drive/root:/New/Deeper");
    assert!(d.find("/New/Deeper").is_some_and(|e| e.is_folder));
    // Downloads give back exactly what was uploaded.
    let got = c
        .download(&format!("/drives/{drive}/root:/New/Deeper/x.bin:/content"))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), pattern(100, 4).as_slice());
    // Delta sees the uploads; children list them by name.
    let (changes, _) = c.all(&link).await;
    let last = changes
        .iter()
        .rev()
        .find(|i| i["id"] == id.as_str())
        .unwrap();
    assert_eq!(last["size"], 5);
    assert_eq!(
        last["file"]["hashes"]["quickXorHash"],
        quickxorhash::base64_of(b"by id")
    );
    assert!(changes.iter().any(|i| i["id"] == deep["id"]));
    let (kids, _) = c
        .all(&format!("/drives/{drive}/root:/New/Deeper:/children"))
        .await;
    assert_eq!(kids.len(), 1);
    assert_eq!(kids[0]["name"], "x.bin");
    let new_folder = d.find("/New").unwrap().id;
    let (kids, _) = c
        .all(&format!(
            "/drives/{drive}/items/{new_folder}/children?$top=1"
        ))
        .await;
    assert_eq!(kids.len(), 1);
    assert_eq!(kids[0]["name"], "Deeper");
    let (top, _) = c.all(&format!("/drives/{drive}/root/children")).await;
    let names: Vec<&str> = top.iter().map(|i| i["name"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(names, sorted);
    assert!(names.contains(&"report 1.docx"));
    // Refused names and paths change nothing.
    for path in ["a|b.txt", "x.txt.", "CON/x.txt"] {
        let r = c
            .put_bytes(
                &format!("/drives/{drive}/root:/{path}:/content"),
                b"x".to_vec(),
            )
            .await;
        assert_eq!(graph_error(r).await.0, 400, "{path}");
    }
    let long = "n".repeat(380);
    let r = c
        .put_bytes(
            &format!("/drives/{drive}/root:/New/{long}:/content"),
            b"x".to_vec(),
        )
        .await;
    assert_eq!(graph_error(r).await.2, "pathIsTooLong");
    let r = c
        .put_bytes(
            &format!("/drives/{drive}/root:/Made/{long}:/content"),
            b"x".to_vec(),
        )
        .await;
    assert_eq!(graph_error(r).await.2, "pathIsTooLong");
    assert!(d.find("/Made").is_none(), "no folder left behind");
    sim.shutdown().await;
}

#[tokio::test]
async fn simple_uploads_have_a_size_limit_and_spend_ingress() {
    let sim = start(ThrottleConfig {
        user_rate: 1000.0,
        user_burst: 1000.0,
        // 10,000 bytes/s, 20,000 at once.
        user_ingress_bytes_per_hour: 3_600.0 * 10_000.0,
        ..ThrottleConfig::default()
    })
    .await;
    let (drive, c) = setup(&sim).await;
    sim.control()
        .set_behaviour(|b| b.simple_upload_max_bytes = 30_000);
    let url = format!("/drives/{drive}/root:/big.bin:/content");
    let (status, code, inner) = graph_error(c.put_bytes(&url, pattern(30_001, 0)).await).await;
    assert_eq!(
        (status, code.as_str(), inner.as_str()),
        (413, "invalidRequest", "maxFileSizeExceeded")
    );
    assert!(sim.drive(&drive).unwrap().find("/big.bin").is_none());
    assert_eq!(c.put_bytes(&url, pattern(25_000, 0)).await.status(), 201);
    // The upload overdrew the user's ingress budget: the next waits.
    let r = c.put_bytes(&url, pattern(10, 0)).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let stats: Value = control(&sim, Method::GET, "stats", None)
        .await
        .json()
        .await
        .unwrap();
    let row = stats["principals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["principal"] == "user1@contoso42.onmicrosoft.com")
        .unwrap();
    assert_eq!(row["ingressBytes"], 25_000);
    sim.shutdown().await;
}

/// `PUT` of one fragment to an upload URL, with no bearer.
async fn fragment(url: &str, data: &[u8], start: usize, total: usize) -> reqwest::Response {
    reqwest::Client::new()
        .put(url)
        .header(
            "content-range",
            format!("bytes {start}-{}/{total}", start + data.len() - 1),
        )
        .body(data.to_vec())
        .send()
        .await
        .unwrap()
}

async fn new_session(c: &Client, path: &str, body: Value) -> Value {
    let r = c.send_json(Method::POST, path, body).await;
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

#[tokio::test]
async fn an_upload_session_in_fragments_resumed_after_a_broken_one() {
    let sim = start(unthrottled()).await;
    let (drive, c) = setup(&sim).await;
    let data = pattern(2 * UNIT + 1_000, 7);
    let total = data.len();
    let when = "2021-06-07T08:09:10Z";
    let session = new_session(
        &c,
        &format!("/drives/{drive}/root:/Video.mp4:/createUploadSession"),
        json!({"item": {"@microsoft.graph.conflictBehavior": "fail", "name": "Video.mp4", "fileSystemInfo": {"createdDateTime": when, "lastModifiedDateTime": when}}}),
    )
    .await;
    assert_eq!(session["nextExpectedRanges"], json!(["0-"]));
    assert!(session["expirationDateTime"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let url = session["uploadUrl"].as_str().unwrap().to_owned();

    let r = fragment(&url, &data[..UNIT], 0, total).await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["nextExpectedRanges"], json!([format!("{UNIT}-")]));
    // Refused: the same bytes again, a gap, a fragment not a multiple of 320 KiB, a bearer.
    assert_eq!(
        graph_error(fragment(&url, &data[..UNIT], 0, total).await).await,
        (416, "invalidRange".into(), "fragmentOverlap".into())
    );
    assert_eq!(
        graph_error(fragment(&url, &data[2 * UNIT..], 2 * UNIT, total).await)
            .await
            .2,
        "fragmentOutOfOrder"
    );
    assert_eq!(
        graph_error(fragment(&url, &data[UNIT..UNIT + 1000], UNIT, total).await)
            .await
            .0,
        400
    );
    assert_eq!(
        graph_error(fragment(&url, &data[UNIT..2 * UNIT], UNIT, total + 1).await)
            .await
            .2,
        "fragmentLengthMismatch"
    );
    let with_bearer = reqwest::Client::new()
        .put(&url)
        .bearer_auth(&c.token)
        .header(
            "content-range",
            format!("bytes {UNIT}-{}/{total}", 2 * UNIT - 1),
        )
        .body(data[UNIT..2 * UNIT].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(graph_error(with_bearer).await.0, 401);

    // A fragment whose connection breaks midway leaves nothing behind.
    let broken = futures_util::stream::iter(vec![
        Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(&data[UNIT..UNIT + 1_000])),
        Err(std::io::Error::other("network down")),
    ]);
    let r = reqwest::Client::new()
        .put(&url)
        .header(
            "content-range",
            format!("bytes {UNIT}-{}/{total}", 2 * UNIT - 1),
        )
        .header("content-length", UNIT.to_string())
        .body(reqwest::Body::wrap_stream(broken))
        .send()
        .await;
    assert!(r.is_err() || !r.unwrap().status().is_success());
    let status: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(
        status["nextExpectedRanges"],
        json!([format!("{UNIT}-")]),
        "resume from here"
    );

    assert_eq!(
        fragment(&url, &data[UNIT..2 * UNIT], UNIT, total)
            .await
            .status(),
        202
    );
    let done = fragment(&url, &data[2 * UNIT..], 2 * UNIT, total).await;
    assert_eq!(done.status(), 201);
    let item: Value = done.json().await.unwrap();
    assert_eq!(item["name"], "Video.mp4");
    assert_eq!(item["size"], total);
    assert_eq!(item["fileSystemInfo"]["lastModifiedDateTime"], when);
    assert_eq!(
        item["file"]["hashes"]["quickXorHash"],
        quickxorhash::base64_of(&data)
    );
    let d = sim.drive(&drive).unwrap();
    let entry = d.find("/Video.mp4").unwrap();
    assert_eq!(entry.sha256(), Some(sha256(&data)));
    // Committed: the session is gone.
    assert_eq!(
        graph_error(reqwest::get(&url).await.unwrap()).await,
        (404, "itemNotFound".into(), "uploadSessionNotFound".into())
    );
    assert_eq!(sim.control().open_upload_sessions(), 0);

    // Again with fail: 409 at once; onto the existing file by id: 200, a new version.
    let r = c
        .send_json(
            Method::POST,
            &format!("/drives/{drive}/root:/Video.mp4:/createUploadSession"),
            json!({}),
        )
        .await;
    assert_eq!(graph_error(r).await.1, "nameAlreadyExists");
    let onto = new_session(
        &c,
        &format!("/drives/{drive}/items/{}/createUploadSession", entry.id),
        json!({}),
    )
    .await;
    let r = fragment(onto["uploadUrl"].as_str().unwrap(), b"short", 0, 5).await;
    assert_eq!(r.status(), 200);
    assert_eq!(d.versions(&entry.id).unwrap().len(), 2);
    assert_eq!(
        d.content(&entry.id, None).unwrap().read_all().unwrap(),
        b"short"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn sessions_are_cancelled_expire_and_commit_when_deferred() {
    let sim = start(unthrottled()).await;
    let (drive, c) = setup(&sim).await;
    let create = |name: &str| format!("/drives/{drive}/root:/{name}:/createUploadSession");
    // Cancelled: 204, then 404.
    let s = new_session(&c, &create("a.bin"), json!({})).await;
    let url = s["uploadUrl"].as_str().unwrap();
    assert_eq!(
        reqwest::Client::new()
            .delete(url)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(fragment(url, b"x", 0, 1).await.status(), 404);
    // Idle past its lifetime: 404 itemNotFound.
    sim.control()
        .set_behaviour(|b| b.upload_session_lifetime_secs = 1);
    let s = new_session(&c, &create("b.bin"), json!({})).await;
    let url = s["uploadUrl"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        graph_error(fragment(url, b"x", 0, 1).await).await,
        (404, "itemNotFound".into(), "uploadSessionNotFound".into())
    );
    sim.control()
        .set_behaviour(|b| b.upload_session_lifetime_secs = 3600);
    // Deferred commit: every byte, 202 with nothing left, then POST commits.
    let s = new_session(
        &c,
        &create("c.bin"),
        json!({"deferCommit": true, "item": {"fileSize": 3}}),
    )
    .await;
    let url = s["uploadUrl"].as_str().unwrap();
    let r = fragment(url, b"abc", 0, 3).await;
    assert_eq!(r.status(), 202);
    assert_eq!(
        r.json::<Value>().await.unwrap()["nextExpectedRanges"],
        json!([])
    );
    assert!(
        sim.drive(&drive).unwrap().find("/c.bin").is_none(),
        "not yet"
    );
    let r = reqwest::Client::new()
        .post(url)
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(sim.drive(&drive).unwrap().find("/c.bin").unwrap().size, 3);
    // fileSize is a promise every fragment keeps.
    let s = new_session(&c, &create("d.bin"), json!({"item": {"fileSize": 10}})).await;
    let r = fragment(s["uploadUrl"].as_str().unwrap(), b"abc", 0, 3).await;
    assert_eq!(graph_error(r).await.2, "fragmentLengthMismatch");
    // Path-addressed sessions need their folder.
    let r = c
        .send_json(
            Method::POST,
            &format!("/drives/{drive}/root:/Nowhere/e.bin:/createUploadSession"),
            json!({}),
        )
        .await;
    assert_eq!(graph_error(r).await.0, 404);
    sim.shutdown().await;
}
