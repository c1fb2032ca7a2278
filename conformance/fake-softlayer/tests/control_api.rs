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

/// Lost answers and cut bodies come after the fake acted; chaos throttles
/// with SoftLayer's rate-limit answer and counts what it did.
#[test]
fn lost_answers_cut_bodies_and_chaos() {
    use fake_softlayer::Action;
    let fake = FakeSoftLayer::start().unwrap();
    let api = fake.endpoint();
    let (_, gid) = fake.seeded_template();
    let template = json!({"parameters": [{"hostname": "h1", "domain": "d.test", "datacenter": {"name": "lon02"},
        "startCpus": 1, "maxMemory": 1024, "blockDeviceTemplateGroup": {"globalIdentifier": gid}}]});
    rt().block_on(async {
        let http = reqwest::Client::new();
        let create = || {
            http.post(format!("{api}/SoftLayer_Virtual_Guest.json"))
                .basic_auth(
                    fake_softlayer::DEFAULT_USERNAME,
                    Some(fake_softlayer::DEFAULT_API_KEY),
                )
                .json(&template)
                .send()
        };
        fake.fail_next(None, 1, Action::LoseAnswer);
        assert!(create().await.is_err(), "no answer");
        assert_eq!(
            fake.with_state(|s| s.guests.len()),
            1,
            "but the guest was made"
        );

        fake.fail_next(None, 1, Action::CutBody);
        let r = create().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.bytes().await.is_err(), "the body is cut short");
        assert_eq!(fake.with_state(|s| s.guests.len()), 2);

        fake.set_chaos(Some(harness::Chaos::throttling(1.0, 1)));
        let r = create().await.unwrap();
        assert_eq!(r.status(), 429);
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["code"],
            "SoftLayer_Exception_WebService_RateLimitExceeded"
        );
        assert_eq!(
            fake.with_state(|s| s.guests.len()),
            2,
            "throttled before acting"
        );
        let counts = fake.chaos_counts();
        assert_eq!((counts.requests, counts.throttled), (1, 1));
        fake.set_chaos(None);
        assert!(fake
            .served()
            .iter()
            .all(|(route, _)| route == "SoftLayer_Virtual_Guest::createObject"));
        assert_eq!(fake.served().len(), 3);
    });
}

/// A guest in its provisioning transaction cannot be deleted; its billing
/// item can be cancelled.
#[test]
fn delete_is_refused_while_provisioning() {
    let fake = FakeSoftLayer::start().unwrap();
    fake.set_provisioning_polls(5);
    let (_, gid) = fake.seeded_template();
    let api = fake.endpoint();
    rt().block_on(async {
        let http = reqwest::Client::new();
        let auth = |r: reqwest::RequestBuilder| {
            r.basic_auth(fake_softlayer::DEFAULT_USERNAME, Some(fake_softlayer::DEFAULT_API_KEY))
        };
        let g: Value = auth(http.post(format!("{api}/SoftLayer_Virtual_Guest.json")))
            .json(&json!({"parameters": [{"hostname": "h1", "domain": "d.test", "datacenter": {"name": "lon02"},
                "startCpus": 1, "maxMemory": 1024, "blockDeviceTemplateGroup": {"globalIdentifier": gid}}]}))
            .send().await.unwrap().json().await.unwrap();
        let id = g["id"].as_u64().unwrap();
        let r = auth(http.delete(format!("{api}/SoftLayer_Virtual_Guest/{id}.json"))).send().await.unwrap();
        assert_eq!(r.status(), 500);
        let body: Value = r.json().await.unwrap();
        assert!(body["code"].as_str().unwrap().contains("BlockingOperationInProgress"), "{body}");
        let item = g["billingItem"]["id"].as_u64();
        let item = item.unwrap_or_else(|| fake.with_state(|s| s.guests[&id].billing_item_id));
        let r = auth(http.get(format!("{api}/SoftLayer_Billing_Item/{item}/cancelService.json"))).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(fake.with_state(|s| s.guests.len()), 0);
    });
}
