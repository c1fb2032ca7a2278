//! Keystone v3: the token request (password or application credential,
//! project scope by name or id), and the endpoint of a service chosen from
//! the catalog by type, interface and region. One token per process.

use crate::error::{cloud_message, OsError};
use crate::session::{transient_only, transport, Service, Session};
use cpi::wait::retry;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

pub(crate) struct Auth {
    pub(crate) token: String,
    catalog: Vec<CatalogEntry>,
}

#[derive(Deserialize)]
struct CatalogEntry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    endpoints: Vec<Endpoint>,
}

#[derive(Deserialize)]
struct Endpoint {
    interface: String,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    region_id: Option<String>,
    url: String,
}

#[derive(Deserialize)]
struct TokenBody {
    token: TokenInfo,
}
#[derive(Deserialize)]
struct TokenInfo {
    #[serde(default)]
    catalog: Vec<CatalogEntry>,
}

impl Session {
    pub(crate) fn keystone_base(&self) -> String {
        let url = self.opts.auth_url.trim_end_matches('/');
        match url.find("/v3") {
            Some(i) => url[..i + 3].to_owned(),
            None => format!("{url}/v3"),
        }
    }

    pub(crate) fn auth_body(&self) -> Value {
        let o = &*self.opts;
        if let (Some(id), Some(secret)) = (
            &o.application_credential_id,
            &o.application_credential_secret,
        ) {
            return json!({"auth": {"identity": {"methods": ["application_credential"],
                "application_credential": {"id": id, "secret": secret.expose()}}}});
        }
        let domain = |fallback: &Option<String>| match o.domain.as_ref().or(fallback.as_ref()) {
            Some(name) => json!({"name": name}),
            None => json!({"id": "default"}),
        };
        let project = match (&o.project_id, o.project.as_ref().or(o.tenant.as_ref())) {
            (Some(id), _) => json!({"id": id}),
            (None, Some(name)) => json!({"name": name, "domain": domain(&o.project_domain_name)}),
            (None, None) => Value::Null,
        };
        let mut body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": o.username, "domain": domain(&o.user_domain_name),
            "password": o.api_key.as_ref().map(|k| k.expose().to_owned()).unwrap_or_default()}}}}});
        if !project.is_null() {
            body["auth"]["scope"] = json!({"project": project});
        }
        body
    }

    /// The token and catalog, asking Keystone once per process.
    pub(crate) async fn auth(&self) -> Result<Arc<Auth>, OsError> {
        if let Some(a) = self.auth.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(a);
        }
        let url = format!("{}/auth/tokens", self.keystone_base());
        let body = self.auth_body();
        let resp = retry(
            "Keystone token request",
            self.backoff,
            transient_only,
            || async {
                let send = self.http.post(&url).json(&body).send();
                let resp = cpi::timing::request("POST /v3/auth/tokens", send)
                    .await
                    .map_err(|e| cpi::Error::from(transport("POST /v3/auth/tokens", &e)))?;
                let status = resp.status();
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    let message = cloud_message(&resp.text().await.unwrap_or_default());
                    let what = "POST /v3/auth/tokens".to_owned();
                    return Err(OsError::Status {
                        what,
                        status: status.as_u16(),
                        message,
                    }
                    .into());
                }
                Ok(resp)
            },
        )
        .await
        .map_err(|e| OsError::Auth(e.message().to_owned()))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(OsError::Auth(format!(
                "Keystone answered {}: {}",
                status.as_u16(),
                cloud_message(&text)
            )));
        }
        let token = resp
            .headers()
            .get("X-Subject-Token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| OsError::Auth("Keystone answered without X-Subject-Token".into()))?;
        cpi::secret::register(&token);
        let info: TokenBody = resp
            .json()
            .await
            .map_err(|e| OsError::Auth(format!("token body: {e}")))?;
        let auth = Arc::new(Auth {
            token,
            catalog: info.token.catalog,
        });
        *self.auth.lock().unwrap_or_else(|e| e.into_inner()) = Some(auth.clone());
        Ok(auth)
    }

    pub(crate) fn endpoint(&self, auth: &Auth, service: Service) -> Result<String, OsError> {
        let interface = self.opts.interface();
        let region = self.opts.region.as_deref();
        for kind in service.catalog_types() {
            let matches: Vec<&Endpoint> = auth
                .catalog
                .iter()
                .filter(|e| e.kind == *kind)
                .flat_map(|e| e.endpoints.iter())
                .filter(|e| e.interface == interface)
                .filter(|e| {
                    region.is_none_or(|r| {
                        e.region.as_deref() == Some(r) || e.region_id.as_deref() == Some(r)
                    })
                })
                .collect();
            match matches.as_slice() {
                [] => continue,
                [one] => {
                    let base = one.url.trim_end_matches('/');
                    let suffix = service.version_suffix();
                    return Ok(if suffix.is_empty() || base.ends_with(suffix) {
                        base.to_owned()
                    } else {
                        format!("{base}{suffix}")
                    });
                }
                _ => {
                    return Err(OsError::Catalog(format!(
                        "Multiple endpoints found for '{kind}' ({interface}); set openstack.region"
                    )))
                }
            }
        }
        Err(OsError::Catalog(format!(
            "no '{}' endpoint with interface '{interface}'{}",
            service.catalog_types()[0],
            region
                .map(|r| format!(" in region '{r}'"))
                .unwrap_or_default()
        )))
    }
}
