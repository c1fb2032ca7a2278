//! One API call as the services see it, their answer, and SoftLayer's
//! error bodies with the status codes the real API uses.

use crate::render::Kind;
use serde_json::Value;

/// A parsed request: `{endpoint}/{service}[/{id}][/{method}].json`.
#[derive(Clone, Debug)]
pub struct Call {
    pub service: String,
    pub method: String,
    pub id: Option<u64>,
    pub params: Vec<Value>,
    /// The object filter as sent (`SoftLayer_Account` filters start with
    /// the property they list, such as `iscsiNetworkStorage`).
    pub filter: Option<Value>,
}

impl Call {
    pub fn route(&self) -> String {
        format!("{}::{}", self.service, self.method)
    }

    pub fn param(&self, i: usize) -> &Value {
        self.params.get(i).unwrap_or(&Value::Null)
    }

    /// The object id, or the error the real API gives without one.
    pub fn need_id(&self) -> Result<u64, ApiError> {
        self.id.ok_or_else(|| {
            ApiError::public(format!(
                "{}::{} needs an initialization parameter (the object id)",
                self.service, self.method
            ))
        })
    }
}

/// An answer, and what kind of object it holds (for masks).
pub struct Reply {
    pub value: Value,
    pub kind: Kind,
}

impl Reply {
    pub fn of(kind: Kind, value: Value) -> Reply {
        Reply { value, kind }
    }
    pub fn plain(value: Value) -> Reply {
        Reply {
            value,
            kind: Kind::Plain,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn not_found(service: &str, id: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: 404,
            code: "SoftLayer_Exception_ObjectNotFound".into(),
            message: format!("Unable to find object with id of '{id}'."),
        }
        .for_service(service)
    }

    fn for_service(self, _service: &str) -> ApiError {
        self
    }

    pub fn public(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 500,
            code: "SoftLayer_Exception_Public".into(),
            message: message.into(),
        }
    }

    pub fn blocking(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 500,
            code: "SoftLayer_Exception_Virtual_Guest_BlockingOperationInProgress".into(),
            message: message.into(),
        }
    }

    /// SoftLayer's throttling answer.
    pub fn rate_limited() -> ApiError {
        ApiError {
            status: 429,
            code: "SoftLayer_Exception_WebService_RateLimitExceeded".into(),
            message: "Rate limit exceeded: too many requests for this account (injected).".into(),
        }
    }

    pub fn no_method(service: &str, method: &str) -> ApiError {
        ApiError {
            status: 404,
            code: "SoftLayer_Exception_Public".into(),
            message: format!(
                "Function (\"{method}\") is not a valid method for this service ({service})."
            ),
        }
    }

    pub fn unauthorized() -> ApiError {
        ApiError {
            status: 401,
            code: "SoftLayer_Exception_Public".into(),
            message: "Access Denied.".into(),
        }
    }

    pub fn body(&self) -> Value {
        serde_json::json!({"error": self.message, "code": self.code})
    }
}

/// A number the API accepts as a JSON number or a decimal string.
pub fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}
