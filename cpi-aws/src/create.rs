//! Creates whose answer can be lost. EC2 may act on a request and the
//! answer never arrive (a dropped connection, a 500 from a proxy): sending
//! it again would make a second snapshot, volume, ENI, instance or image and
//! leak the first. So each create carries a token of its own call (a
//! `bosh_cpi_token` tag, and EC2's `ClientToken` where the API has one),
//! and before any re-send the resource is looked up by that token. Only a
//! throttled answer, which says EC2 did not act, is re-sent without a look.

use crate::errors::{is_throttled, request_backoff, request_verdict};
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use cpi::wait;
use cpi::Result;
use std::cell::Cell;
use std::future::Future;

/// The tag a create is marked with, its value unique to the call.
pub const TOKEN_TAG: &str = "bosh_cpi_token";

/// A fresh token for one create.
pub fn token() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `tag:bosh_cpi_token = token`, for Describe* lookups.
pub fn token_filter(token: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{TOKEN_TAG}"))
        .values(token)
        .build()
}

/// The snapshot that a create carrying `token` made, if it made one: the
/// look-up before a create whose answer was lost is sent again.
pub async fn snapshot_by_token(ec2: &aws_sdk_ec2::Client, token: &str) -> Result<Option<String>> {
    let out = send!(
        "DescribeSnapshots",
        ec2.describe_snapshots()
            .owner_ids("self")
            .filters(token_filter(token))
    )
    .await?;
    Ok(out
        .snapshots()
        .first()
        .and_then(|s| s.snapshot_id())
        .map(str::to_owned))
}

/// The tag specification for `kind`: the given tags and the token.
pub fn tagged(kind: ResourceType, pairs: &[(String, String)], token: &str) -> TagSpecification {
    let mut tags = crate::cloud::tags(pairs);
    tags.push(Tag::builder().key(TOKEN_TAG).value(token).build());
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(tags))
        .build()
}

/// Sends a create once, and again only when a look-up by its token finds
/// nothing: `send` makes one attempt, `lookup` answers what an earlier
/// attempt made, if anything. Retried as any request is (`request_verdict`).
pub async fn once<T, S, SFut, L, LFut>(what: &str, send: S, lookup: L) -> Result<T>
where
    S: Fn() -> SFut,
    SFut: Future<Output = Result<T>>,
    L: Fn() -> LFut,
    LFut: Future<Output = Result<Option<T>>>,
{
    let unanswered = Cell::new(false);
    let (send, lookup, unanswered) = (&send, &lookup, &unanswered);
    wait::retry(what, request_backoff(), request_verdict, || async move {
        if unanswered.get() {
            if let Some(made) = lookup().await? {
                tracing::info!("{what}: the lost answer's resource found by its token");
                return Ok(made);
            }
        }
        let r = send().await;
        if let Err(e) = &r {
            // Anything but a throttled answer may have been acted on.
            if !is_throttled(e) {
                unanswered.set(true);
            }
        }
        r
    })
    .await
}
