//! The lease table: which worker reads which shard, and how far it got.
//!
//! The table is laid out exactly as the Kinesis Client Library (KCL 2.x) lays it out, so
//! waystream can take over a stream from a KCL application (or hand it back): one item per
//! shard, hash key `leaseKey` = the shard id, with `leaseOwner` (absent when nobody holds
//! it), `leaseCounter` (bumped by every write, which is how other workers see the owner is
//! alive), `checkpoint` (a sequence number or one of `TRIM_HORIZON`, `LATEST`,
//! `AT_TIMESTAMP`, `SHARD_END`), `checkpointSubSequenceNumber`,
//! `ownerSwitchesSinceCheckpoint`, `parentShardId` and `childShardIds` (string sets), and
//! the shard's `startingHashKey` and `endingHashKey`. With state checkpointing (see
//! [`super::state`]), waystream adds `waystreamState`: the S3 key of the transform state
//! that goes with the checkpoint (KCL leaves attributes it does not know alone).
//!
//! Every write is conditional, as in KCL: creating requires the item to be absent;
//! renewing, taking, checkpointing and releasing require the `leaseCounter` this worker
//! last saw (and, for a lease it holds, that it is still the owner). A failed condition
//! means another worker took the lease: the caller stops reading that shard at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus,
};

use super::position::Checkpoint;
use super::state::{ShardRange, StateClock};

const KEY: &str = "leaseKey";
const OWNER: &str = "leaseOwner";
const COUNTER: &str = "leaseCounter";
const CHECKPOINT: &str = "checkpoint";
const SUB_SEQUENCE: &str = "checkpointSubSequenceNumber";
const OWNER_SWITCHES: &str = "ownerSwitchesSinceCheckpoint";
const PARENTS: &str = "parentShardId";
const CHILDREN: &str = "childShardIds";
const STARTING_HASH_KEY: &str = "startingHashKey";
const ENDING_HASH_KEY: &str = "endingHashKey";
const STATE: &str = "waystreamState";

/// What a new lease records about its shard.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLease<'a> {
    pub shard_id: &'a str,
    pub checkpoint: Checkpoint,
    pub parents: &'a [String],
    /// The shard's children, when it is closed and they are known.
    pub children: &'a [String],
    /// The shard's hash key range (`startingHashKey`, `endingHashKey`), as ListShards gives it.
    pub hash_keys: Option<(&'a str, &'a str)>,
}

/// A lease as the table holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub shard_id: String,
    pub owner: Option<String>,
    pub counter: u64,
    pub checkpoint: Checkpoint,
    pub owner_switches: u64,
    pub parents: Vec<String>,
    /// The S3 key of the state stored with the checkpoint, if any.
    pub state: Option<String>,
}

/// A lease this worker holds: the counter it last wrote, and whether it lost it.
#[derive(Debug)]
pub struct HeldLease {
    pub shard_id: String,
    /// With state checkpointing: the shard's range and when its state is next due.
    pub state: Option<HeldState>,
    counter: tokio::sync::Mutex<u64>,
    lost: AtomicBool,
}

/// What a held lease needs for state checkpointing.
#[derive(Debug)]
pub struct HeldState {
    pub range: ShardRange,
    pub clock: StateClock,
    /// The key of the state the last checkpoint (ours or the one taken over) names.
    pub stored: std::sync::Mutex<Option<String>>,
}

impl HeldLease {
    /// Whether another worker took the lease (or it was given up): its records must not
    /// be processed or checkpointed any more.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Marks the lease lost.
    pub fn mark_lost(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }
}

/// The DynamoDB table of leases.
#[derive(Clone)]
pub struct LeaseTable {
    client: Client,
    table: String,
}

/// What a conditional write came to.
type Conditional<T> = Result<Option<T>>;

impl LeaseTable {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        LeaseTable {
            client,
            table: table.into(),
        }
    }

    /// Makes sure the table exists: creates it (on-demand billing) when `create` is set,
    /// and waits until it is active.
    pub async fn ensure_exists(&self, create: bool) -> Result<()> {
        let described = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await;
        let status = match described {
            Ok(out) => out.table().and_then(|t| t.table_status().cloned()),
            Err(e) if is_not_found(&e) => {
                anyhow::ensure!(
                    create,
                    "lease table {} does not exist (and create_lease_table is off)",
                    self.table
                );
                self.create_table().await?;
                None
            }
            Err(e) => return Err(e).context(format!("describing lease table {}", self.table)),
        };
        if status == Some(TableStatus::Active) {
            return Ok(());
        }
        for _ in 0..120 {
            let out = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await?;
            if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        anyhow::bail!("lease table {} did not become active in 60 s", self.table)
    }

    async fn create_table(&self) -> Result<()> {
        tracing::info!(table = %self.table, "creating the lease table");
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(KEY)
                    .key_type(KeyType::Hash)
                    .build()?,
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(KEY)
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match created {
            // Another worker starting at the same time created it first.
            Err(e) if e.code() == Some("ResourceInUseException") => Ok(()),
            result => result
                .map(drop)
                .with_context(|| format!("creating lease table {}", self.table)),
        }
    }

    /// Every lease, read consistently.
    pub async fn list(&self) -> Result<Vec<Lease>> {
        let mut leases = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .with_context(|| format!("scanning lease table {}", self.table))?;
            for item in out.items() {
                leases.push(lease_from_item(item)?);
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(leases);
            }
        }
    }

    /// Creates an unowned lease for a new shard; false if one exists already.
    pub async fn create(&self, lease: &NewLease<'_>) -> Result<bool> {
        let (sequence, sub) = lease.checkpoint.to_attributes();
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(KEY, s(lease.shard_id))
            .item(COUNTER, n(0))
            .item(CHECKPOINT, s(sequence))
            .item(SUB_SEQUENCE, n(sub))
            .item(OWNER_SWITCHES, n(0))
            .condition_expression("attribute_not_exists(#key)")
            .expression_attribute_names("#key", KEY);
        if !lease.parents.is_empty() {
            put = put.item(PARENTS, AttributeValue::Ss(lease.parents.to_vec()));
        }
        if !lease.children.is_empty() {
            put = put.item(CHILDREN, AttributeValue::Ss(lease.children.to_vec()));
        }
        if let Some((start, end)) = lease.hash_keys {
            put = put
                .item(STARTING_HASH_KEY, s(start))
                .item(ENDING_HASH_KEY, s(end));
        }
        Ok(conditional(put.send().await, "creating a lease")?.is_some())
    }

    /// Adds `child` to the `childShardIds` of `parent`'s lease, if that lease exists (as
    /// KCL records a closed shard's children). Leaves the counter alone: it is no
    /// ownership change, and the owner's next conditional write must not fail over it.
    pub async fn add_child(&self, parent: &str, child: &str) -> Result<()> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, s(parent))
            .update_expression("ADD #children :child")
            .condition_expression("attribute_exists(#key)")
            .expression_attribute_names("#children", CHILDREN)
            .expression_attribute_names("#key", KEY)
            .expression_attribute_values(":child", AttributeValue::Ss(vec![child.to_string()]))
            .send()
            .await;
        conditional(update, "recording a child shard").map(drop)
    }

    /// Takes `lease` (expired, unowned or stolen) for `owner`, if its counter is still the
    /// one seen; returns the lease as held.
    pub async fn take(&self, lease: &Lease, owner: &str) -> Conditional<HeldLease> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, s(&lease.shard_id))
            .update_expression("SET #owner = :owner, #counter = :next, #switches = if_not_exists(#switches, :zero) + :one")
            .condition_expression("#counter = :seen")
            .expression_attribute_names("#owner", OWNER)
            .expression_attribute_names("#counter", COUNTER)
            .expression_attribute_names("#switches", OWNER_SWITCHES)
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":next", n(lease.counter + 1))
            .expression_attribute_values(":seen", n(lease.counter))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        Ok(conditional(result, "taking a lease")?.map(|()| HeldLease {
            shard_id: lease.shard_id.clone(),
            state: None,
            counter: tokio::sync::Mutex::new(lease.counter + 1),
            lost: AtomicBool::new(false),
        }))
    }

    /// Bumps the counter of a held lease, so other workers see this one alive. False (and
    /// the lease marked lost) when another worker took it.
    pub async fn renew(&self, held: &HeldLease, owner: &str) -> Result<bool> {
        self.update_held(held, owner, "renewing a lease", |update| update)
            .await
    }

    /// Records how far this worker got in a held lease's shard, and with `state` the key
    /// of the state that goes with it, in the same write. False (and the lease marked
    /// lost) when another worker took it.
    pub async fn checkpoint(
        &self,
        held: &HeldLease,
        owner: &str,
        checkpoint: &Checkpoint,
        state: Option<&str>,
    ) -> Result<bool> {
        let (sequence, sub) = checkpoint.to_attributes();
        self.update_held(held, owner, "checkpointing", |update| {
            let set =
                "SET #counter = :next, #checkpoint = :checkpoint, #sub = :sub, #switches = :zero";
            let update = match state {
                Some(key) => update
                    .update_expression(format!("{set}, #state = :state"))
                    .expression_attribute_names("#state", STATE)
                    .expression_attribute_values(":state", s(key)),
                None => update.update_expression(set),
            };
            update
                .expression_attribute_names("#checkpoint", CHECKPOINT)
                .expression_attribute_names("#sub", SUB_SEQUENCE)
                .expression_attribute_names("#switches", OWNER_SWITCHES)
                .expression_attribute_values(":checkpoint", s(sequence))
                .expression_attribute_values(":sub", n(sub))
                .expression_attribute_values(":zero", n(0))
        })
        .await
    }

    /// Gives a held lease up (removes the owner) so another worker can take it at once.
    pub async fn release(&self, held: &HeldLease, owner: &str) -> Result<bool> {
        let released = self
            .update_held(held, owner, "releasing a lease", |update| {
                update.update_expression("SET #counter = :next REMOVE #owner")
            })
            .await?;
        held.mark_lost();
        Ok(released)
    }

    /// A conditional update of a held lease: the counter must be the one last written and
    /// the owner this worker. The counter goes up by one. `customise` sets the update
    /// expression (the default only bumps the counter).
    async fn update_held(
        &self,
        held: &HeldLease,
        owner: &str,
        what: &str,
        customise: impl FnOnce(
            aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
        ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    ) -> Result<bool> {
        let mut counter = held.counter.lock().await;
        if held.is_lost() {
            return Ok(false);
        }
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, s(&held.shard_id))
            .update_expression("SET #counter = :next")
            .condition_expression("#counter = :seen AND #owner = :owner")
            .expression_attribute_names("#counter", COUNTER)
            .expression_attribute_names("#owner", OWNER)
            .expression_attribute_values(":next", n(*counter + 1))
            .expression_attribute_values(":seen", n(*counter))
            .expression_attribute_values(":owner", s(owner));
        match conditional(customise(update).send().await, what)? {
            Some(()) => {
                *counter += 1;
                Ok(true)
            }
            None => {
                tracing::warn!(shard = %held.shard_id, "{what}: the lease was taken by another worker");
                held.mark_lost();
                Ok(false)
            }
        }
    }
}

/// Ok(Some) on success, Ok(None) when the condition failed, Err otherwise.
fn conditional<O, E, R>(
    result: std::result::Result<O, SdkError<E, R>>,
    what: &str,
) -> Conditional<()>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(Some(())),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(None),
        Err(e) => Err(anyhow::Error::new(e).context(what.to_string())),
    }
}

fn is_not_found<E, R>(e: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    e.code() == Some("ResourceNotFoundException")
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn lease_from_item(item: &HashMap<String, AttributeValue>) -> Result<Lease> {
    let string = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| -> Result<u64> {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .map_or(Ok(0), |v| {
                v.parse()
                    .with_context(|| format!("lease attribute {name} = {v:?}"))
            })
    };
    let shard_id = string(KEY).context("a lease item without leaseKey")?;
    let checkpoint = string(CHECKPOINT).unwrap_or_else(|| "TRIM_HORIZON".into());
    Ok(Lease {
        owner: string(OWNER),
        counter: number(COUNTER)?,
        checkpoint: Checkpoint::from_attributes(&checkpoint, number(SUB_SEQUENCE)?)
            .with_context(|| format!("lease {shard_id}"))?,
        owner_switches: number(OWNER_SWITCHES)?,
        parents: item
            .get(PARENTS)
            .and_then(|v| v.as_ss().ok())
            .cloned()
            .unwrap_or_default(),
        state: string(STATE),
        shard_id,
    })
}
