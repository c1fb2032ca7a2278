//! The fake's object storage: auth, containers, objects streamed in with
//! chunked transfer encoding, dynamic large objects, deletion, faults, and
//! `createFromExternalSource` reading what was uploaded.

use fake_softlayer::{Action, FakeSoftLayer, Outcome};
use serde_json::{json, Value};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn stores_streamed_segments_and_imports_them() {
    let fake = FakeSoftLayer::start().unwrap();
    let user = fake.swift_username();
    rt().block_on(async {
        let http = reqwest::Client::new();
        let auth = |key: &'static str| {
            http.get(fake.swift_endpoint())
                .header("X-Auth-User", user.clone())
                .header("X-Auth-Key", key)
                .send()
        };
        assert_eq!(auth("wrong").await.unwrap().status(), 401);
        let r = auth(fake_softlayer::DEFAULT_API_KEY).await.unwrap();
        assert_eq!(r.status(), 200);
        let token = r.headers()["x-auth-token"].to_str().unwrap().to_owned();
        let url = r.headers()["x-storage-url"].to_str().unwrap().to_owned();
        assert!(url.ends_with("/v1/AUTH_SLOS278444-2"), "{url}");
        let req = |m: reqwest::Method, path: &str| http.request(m, format!("{url}/{path}")).header("X-Auth-Token", token.clone());

        assert_eq!(req(reqwest::Method::PUT, "c").send().await.unwrap().status(), 201);
        assert_eq!(req(reqwest::Method::PUT, "c").send().await.unwrap().status(), 202);
        // No token: refused.
        let r = http.put(format!("{url}/c/x")).body("data").send().await.unwrap();
        assert_eq!(r.status(), 401);

        // Two segments, the first sent chunked (a stream of unknown length).
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(vec![1u8; 1000]), Ok(vec![2u8; 500])];
        let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
        let r = req(reqwest::Method::PUT, "c/img.vhd/00000000").body(body).send().await.unwrap();
        assert_eq!(r.status(), 201);
        req(reqwest::Method::PUT, "c/img.vhd/00000001").body(vec![3u8; 24]).send().await.unwrap();
        let r = req(reqwest::Method::PUT, "c/img.vhd")
            .header("X-Object-Manifest", "c/img.vhd/")
            .body(Vec::new())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let r = req(reqwest::Method::HEAD, "c/img.vhd").send().await.unwrap();
        assert_eq!(r.headers()["content-length"], "1524");
        let data = req(reqwest::Method::GET, "c/img.vhd").send().await.unwrap().bytes().await.unwrap();
        assert_eq!(data.len(), 1524);
        assert_eq!((data[0], data[1200], data[1523]), (1, 2, 3));
        let list: Value = req(reqwest::Method::GET, "c?format=json").send().await.unwrap().json().await.unwrap();
        assert_eq!(list.as_array().unwrap().len(), 3);

        // Imported from its swift:// URI; active after two polls.
        fake.set_import(2, Outcome::Ready);
        let sl = |m: reqwest::Method, path: String| {
            http.request(m, format!("{}/{path}", fake.endpoint()))
                .basic_auth(fake_softlayer::DEFAULT_USERNAME, Some(fake_softlayer::DEFAULT_API_KEY))
        };
        let service = "SoftLayer_Virtual_Guest_Block_Device_Template_Group";
        let import = |uri: &str| {
            sl(reqwest::Method::POST, format!("{service}/createFromExternalSource.json"))
                .json(&json!({"parameters": [{"name": "img", "operatingSystemReferenceCode": "UBUNTU_22_64", "uri": uri}]}))
                .send()
        };
        let r = import("swift://SLOS278444-2@lon02/c/missing.vhd").await.unwrap();
        assert_eq!(r.status(), 500, "an object that is not there");
        let r: Value = import("swift://SLOS278444-2@lon02/c/img.vhd").await.unwrap().json().await.unwrap();
        let id = r["id"].as_u64().unwrap();
        let mask = "objectMask=mask[id,status[keyName],transaction[id]]";
        let mut states = Vec::new();
        for _ in 0..3 {
            let t: Value = sl(reqwest::Method::GET, format!("{service}/{id}.json?{mask}")).send().await.unwrap().json().await.unwrap();
            states.push(t["status"]["keyName"].as_str().unwrap().to_owned());
        }
        assert_eq!(states, ["CREATE_PENDING", "CREATE_PENDING", "ACTIVE"]);

        // Faults apply to object storage routes too.
        fake.fail_nth(Some("Swift::deleteObject"), 1, Action::unavailable());
        assert_eq!(req(reqwest::Method::DELETE, "c/img.vhd").send().await.unwrap().status(), 503);
        assert_eq!(req(reqwest::Method::DELETE, "c").send().await.unwrap().status(), 409, "not empty");
        for o in ["c/img.vhd", "c/img.vhd/00000000", "c/img.vhd/00000001"] {
            assert_eq!(req(reqwest::Method::DELETE, o).send().await.unwrap().status(), 204);
        }
        assert_eq!(req(reqwest::Method::DELETE, "c/img.vhd").send().await.unwrap().status(), 404);
        assert_eq!(req(reqwest::Method::DELETE, "c").send().await.unwrap().status(), 204);
    });
    assert!(fake.swift_listing().is_empty());
    assert_eq!(fake.with_state(|s| s.swift.stored_bytes()), 0);
}
