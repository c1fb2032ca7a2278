//! The standalone control API (`/_fake/...`) and the wire basics: auth,
//! error bodies, faults by route, provisioning counted in polls.

use fake_softlayer::FakeSoftLayer;
use serde_json::{json, Value};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn control_api_injects_faults_and_sets_provisioning() {
    let fake = FakeSoftLayer::start().unwrap();
    let base = format!("http://{}", fake.addr());
    let api = fake.endpoint();
    rt().block_on(async {
        let http = reqwest::Client::new();
        let get = |path: String| {
            http.get(format!("{api}/{path}"))
                .basic_auth(fake_softlayer::DEFAULT_USERNAME, Some(fake_softlayer::DEFAULT_API_KEY))
                .send()
        };
        // Bad credentials: 401 with SoftLayer's error body.
        let r = http.get(format!("{api}/SoftLayer_Account/getVirtualGuests.json")).basic_auth("x", Some("y")).send().await.unwrap();
        assert_eq!(r.status(), 401);
        // Not found: 404, code SoftLayer_Exception_ObjectNotFound.
        let r = get("SoftLayer_Virtual_Guest/1.json".into()).await.unwrap();
        assert_eq!(r.status(), 404);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "SoftLayer_Exception_ObjectNotFound");
        assert!(body["error"].is_string());

        // The second call to a route fails, once.
        http.post(format!("{base}/_fake/fault"))
            .json(&json!({"route": "SoftLayer_Account::getVirtualGuests", "skip": 1, "times": 1, "status": 503,
                          "code": "SoftLayer_Exception_WebService_ServiceUnavailable"}))
            .send()
            .await
            .unwrap();
        let statuses: Vec<u16> = futures(&get, 3).await;
        assert_eq!(statuses, vec![200, 503, 200]);

        // A dropped connection: no HTTP answer at all.
        http.post(format!("{base}/_fake/fault")).json(&json!({"drop": true})).send().await.unwrap();
        assert!(get("SoftLayer_Account/getVirtualGuests.json".into()).await.is_err());

        http.post(format!("{base}/_fake/provisioning")).json(&json!({"polls": 2})).send().await.unwrap();
        let inv: Value = http.get(format!("{base}/_fake/inventory")).send().await.unwrap().json().await.unwrap();
        assert_eq!(inv["guests"], json!([]));
    });
    assert_eq!(fake.with_state(|s| s.provisioning_polls), 2);
}

async fn futures<F, Fut>(get: &F, n: usize) -> Vec<u16>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            get("SoftLayer_Account/getVirtualGuests.json".into())
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    out
}
