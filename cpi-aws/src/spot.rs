//! Spot instances (`spot_bid_price`, `spot_ondemand_fallback`) and the
//! RunInstances call that makes every instance.
//!
//! As the Ruby CPI does since it left the legacy RequestSpotInstances API,
//! a spot VM is RunInstances with `InstanceMarketOptions` (one-time,
//! terminated on interruption, `MaxPrice` the bid): EC2 answers at once with
//! an instance, or with an error when no capacity meets the bid. So there
//! is no open request to poll: its fulfilment is the instance running,
//! waited on as any instance is (`instance::wait_running`), and the same
//! `ClientToken` and `bosh_cpi_token` tag make a lost answer safe to re-send.
//! EC2 still records a spot request behind the instance: a create that
//! fails after the launch cancels it (`cancel_request_of`) before the
//! instance is terminated.

use crate::create;
use crate::errors::{aws_cause, sdk};
use crate::instance;
use aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder;
use aws_sdk_ec2::types::{
    InstanceInterruptionBehavior, InstanceMarketOptionsRequest, MarketType, SpotInstanceType,
    SpotMarketOptions,
};
use aws_sdk_ec2::Client;
use cpi::{Error, ErrorKind, Result};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `spot_bid_price`: the most to pay, USD per instance-hour. The Ruby CPI
/// sends the manifest's value with `to_s`, so a number or a numeric string.
#[derive(Debug, Clone, PartialEq)]
pub struct BidPrice(String);

impl BidPrice {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for BidPrice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let v = Value::deserialize(d)?;
        let text = match &v {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.trim().to_owned(),
            other => {
                return Err(D::Error::custom(format!(
                    "expected a price in USD per hour (a number), got {other}"
                )))
            }
        };
        match text.parse::<f64>() {
            Ok(p) if p.is_finite() && p > 0.0 => Ok(BidPrice(text)),
            _ => Err(D::Error::custom(format!(
                "expected a positive price in USD per hour, got {v}"
            ))),
        }
    }
}

/// What `create_vm` asks of the market.
#[derive(Debug, Clone)]
pub struct Spot {
    pub bid: BidPrice,
    /// On-demand when EC2 refuses the spot instance.
    pub ondemand_fallback: bool,
}

fn market_options(bid: &BidPrice) -> InstanceMarketOptionsRequest {
    InstanceMarketOptionsRequest::builder()
        .market_type(MarketType::Spot)
        .spot_options(
            SpotMarketOptions::builder()
                .max_price(bid.as_str())
                .spot_instance_type(SpotInstanceType::OneTime)
                .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
                .build(),
        )
        .build()
}

/// Launches the instance `req` describes (its tags carry `token`): on the
/// spot market when `spot` says so, falling back to on-demand when EC2
/// refuses and the fallback is on. Answers the instance id.
pub(crate) async fn run(
    ec2: &Client,
    req: RunInstancesFluentBuilder,
    spot: Option<&Spot>,
    token: &str,
) -> Result<String> {
    let Some(spot) = spot else {
        return once(ec2, "RunInstances", req.client_token(token), token).await;
    };
    tracing::info!("create_vm: launching a spot instance, bid {}", spot.bid.0);
    let spot_req = req
        .clone()
        .client_token(token)
        .instance_market_options(market_options(&spot.bid));
    let refused = match once(ec2, "RunInstances (spot)", spot_req, token).await {
        Ok(id) => return Ok(id),
        Err(e) => e,
    };
    // An answer never received may still have made the instance; a second
    // (on-demand) one must not be made beside it.
    if aws_cause(&refused).is_none_or(|a| a.is_transient()) {
        if let Some(id) = instance::find_by_token(ec2, token).await? {
            tracing::info!("create_vm: the spot request made {id} after all");
            return Ok(id);
        }
    }
    if !spot.ondemand_fallback {
        return Err(refused
            .with_kind(ErrorKind::VmCreationFailed)
            .retry(false)
            .context(format!(
                "create_vm: spot instance creation failed (cloud_properties.spot_bid_price {})",
                spot.bid.0
            )));
    }
    tracing::info!(
        "create_vm: spot instance creation failed ({}); launching on demand because \
         cloud_properties.spot_ondemand_fallback is set",
        refused.message()
    );
    // Another token: EC2 would answer the spot call's one with
    // IdempotentParameterMismatch. The tag stays, for look-ups and cleanup.
    let ondemand = req.client_token(format!("{token}-on-demand"));
    once(ec2, "RunInstances", ondemand, token).await
}

/// One RunInstances, re-sent after a lost answer only when no instance of
/// this call's token exists (`create::once`).
async fn once(
    ec2: &Client,
    op: &'static str,
    req: RunInstancesFluentBuilder,
    token: &str,
) -> Result<String> {
    // EC2 honours the ClientToken; a look-alike may not, so a re-send
    // after a lost answer first looks for the instance by its tag.
    create::once(
        op,
        || async {
            let out = req.clone().send().await.map_err(sdk("RunInstances"))?;
            out.instances()
                .first()
                .and_then(|i| i.instance_id())
                .map(str::to_owned)
                .ok_or_else(|| Error::cloud(format!("{op}: the response has no instance id")))
        },
        || instance::find_by_token(ec2, token),
    )
    .await
}

/// Cancels the spot request behind instance `id`, if it has one, so that
/// nothing of a failed create stays open. Missing is success.
pub(crate) async fn cancel_request_of(ec2: &Client, id: &str) -> Result<()> {
    let Some(request) = instance::find(ec2, id)
        .await?
        .and_then(|i| i.spot_instance_request_id().map(str::to_owned))
    else {
        return Ok(());
    };
    match send!(
        "CancelSpotInstanceRequests",
        ec2.cancel_spot_instance_requests()
            .spot_instance_request_ids(&request)
    )
    .await
    {
        Ok(_) => {
            tracing::info!("create_vm cleanup: cancelled spot request {request} of {id}");
            Ok(())
        }
        Err(e) if crate::errors::is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bid(v: Value) -> std::result::Result<BidPrice, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn a_bid_is_a_positive_number_or_numeric_string() {
        assert_eq!(bid(json!(0.05)).unwrap().as_str(), "0.05");
        assert_eq!(bid(json!("0.1")).unwrap().as_str(), "0.1");
        assert_eq!(bid(json!(2)).unwrap().as_str(), "2");
        for bad in [json!("cheap"), json!(true), json!([1]), json!(0), json!(-1)] {
            assert!(bid(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_market_options_are_the_ruby_cpis() {
        let m = market_options(&BidPrice("0.2".into()));
        assert_eq!(m.market_type(), Some(&MarketType::Spot));
        let s = m.spot_options().unwrap();
        assert_eq!(s.max_price(), Some("0.2"));
        assert_eq!(s.spot_instance_type(), Some(&SpotInstanceType::OneTime));
        assert_eq!(
            s.instance_interruption_behavior(),
            Some(&InstanceInterruptionBehavior::Terminate)
        );
    }
}
