//! The row writer of a plan: a user's choice as pending rows, as DynamoDB
//! items (written) or JSON Lines (`--dry-run`, `--out`). The CLI and the
//! plan-chunk function both write through [`Chooser`].

use super::audience::AudienceUser;
use super::Plan;
use crate::domain::assignment_ids::for_planned_rank;
use crate::domain::selection::{Engine, Pick, SelectionRecord, HOLDOUT_POLICY, POLICY};
use crate::domain::CampaignId;
use crate::dynamo::batch_write::LineItem;
use crate::dynamo::Item;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use std::io::Write;

/// What each row of an offer has in common, prepared once.
pub struct PlanRows {
    /// The row's JSON after `userId`, `rank` and `selection`: `,"sortKey":...}\n`.
    json_tails: Vec<String>,
    items: Vec<Item>,
    /// Each row's assignmentId is of (campaign, user, rank) (section 2).
    campaign_id: CampaignId,
}

impl PlanRows {
    /// `ttl`: the rows' expiry (epoch seconds), from the plan's expiryDate.
    pub fn new(plan: &Plan, ttl: i64) -> Self {
        let mut json_tails = Vec::with_capacity(plan.pool.len());
        let mut items = Vec::with_capacity(plan.pool.len());
        for offer in &plan.pool {
            let mut row = plan.sample_row(offer, "");
            row.remove("userId");
            row.insert("ttl".into(), Value::from(ttl));
            let text = Value::Object(row.clone()).to_string();
            // `{...}` without its opening brace, after a comma.
            json_tails.push(format!(",{}\n", &text[1..]));
            let item: Item = serde_dynamo::to_item(&row).unwrap_or_default();
            items.push(item);
        }
        Self {
            json_tails,
            items,
            campaign_id: plan.campaign_id.clone(),
        }
    }
}

/// The engine, choosing user after user, and what it chose so far.
pub struct Chooser {
    engine: Engine,
    picks: Vec<Pick>,
    pub tally: Tally,
}

impl Chooser {
    pub fn new(engine: Engine) -> Self {
        let slots = engine.config().slots;
        let pool = engine.history().pool().len();
        Self {
            engine,
            picks: Vec::with_capacity(slots),
            tally: Tally::new(pool),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn choose(&mut self, user: &AudienceUser) -> bool {
        let holdout = self.engine.choose_into(
            user.user_id,
            user.attributes.iter().copied(),
            &mut self.picks,
        );
        self.tally.count(holdout, &self.picks);
        holdout
    }

    /// The user's rows as JSON Lines, appended to `buffer`.
    pub fn json_lines(&mut self, rows: &PlanRows, user: &AudienceUser, buffer: &mut Vec<u8>) {
        let holdout = self.choose(user);
        let user_id = serde_json::to_string(user.user_id).unwrap_or_default();
        let context = context_json(&user.attributes);
        let policy = if holdout { HOLDOUT_POLICY } else { POLICY };
        for pick in &self.picks {
            let _ = write!(
                buffer,
                "{{\"userId\":{user_id},\"rank\":{},\"assignmentId\":\"{}\",\"selection\":{{\"policy\":\"{policy}\",\"propensity\":{},\"holdout\":{holdout},\"context\":{context}}}",
                pick.rank,
                for_planned_rank(&rows.campaign_id, user.user_id, pick.rank),
                serde_json::Number::from_f64(pick.propensity).map_or("1".into(), |n| n.to_string()),
            );
            buffer.extend_from_slice(rows.json_tails[pick.offer].as_bytes());
        }
    }

    /// The user's rows as DynamoDB items, each with the audience line it came from.
    pub fn items(&mut self, rows: &PlanRows, user: &AudienceUser, line: u64) -> Vec<LineItem> {
        let holdout = self.choose(user);
        let mut selection = SelectionRecord {
            policy: if holdout { HOLDOUT_POLICY } else { POLICY }.to_owned(),
            propensity: 1.0,
            holdout,
            context: user
                .attributes
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        };
        self.picks
            .iter()
            .map(|pick| {
                let mut item = rows.items[pick.offer].clone();
                item.insert("userId".into(), AttributeValue::S(user.user_id.to_owned()));
                item.insert("rank".into(), AttributeValue::N(pick.rank.to_string()));
                item.insert(
                    "assignmentId".into(),
                    AttributeValue::S(for_planned_rank(&rows.campaign_id, user.user_id, pick.rank)),
                );
                selection.propensity = pick.propensity;
                // Texts, a number and a bool: serde_dynamo cannot fail on them.
                if let Ok(record) = serde_dynamo::to_attribute_value(&selection) {
                    item.insert("selection".into(), record);
                }
                LineItem { line, item }
            })
            .collect()
    }
}

/// `{"name":"value",...}` of sorted attributes.
fn context_json(attributes: &[(&str, &str)]) -> String {
    let mut text = String::with_capacity(16 + attributes.len() * 24);
    text.push('{');
    for (index, (name, value)) in attributes.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        text.push_str(&serde_json::to_string(name).unwrap_or_default());
        text.push(':');
        text.push_str(&serde_json::to_string(value).unwrap_or_default());
    }
    text.push('}');
    text
}

/// What a plan chose, for its summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub users: u64,
    pub holdout: u64,
    pub rows: u64,
    /// By pool index: users whose first offer it is.
    pub first: Vec<u64>,
}

impl Tally {
    pub fn new(pool: usize) -> Self {
        Self {
            first: vec![0; pool],
            ..Self::default()
        }
    }

    fn count(&mut self, holdout: bool, picks: &[Pick]) {
        self.users += 1;
        self.holdout += u64::from(holdout);
        self.rows += picks.len() as u64;
        if let Some(first) = picks.first() {
            if let Some(count) = self.first.get_mut(first.offer) {
                *count += 1;
            }
        }
    }

    /// Adds another chunk's tally (of the same pool).
    pub fn merge(&mut self, other: &Tally) {
        self.users += other.users;
        self.holdout += other.holdout;
        self.rows += other.rows;
        if self.first.len() < other.first.len() {
            self.first.resize(other.first.len(), 0);
        }
        for (total, count) in self.first.iter_mut().zip(&other.first) {
            *total += count;
        }
    }

    /// The summary's lines: users, holdout and rows; the offers most often first.
    pub fn summary(&self, plan: &Plan) -> [String; 2] {
        let mut top: Vec<(usize, u64)> = self.first.iter().copied().enumerate().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let shown: Vec<String> = top
            .iter()
            .take(5)
            .filter(|(_, count)| *count > 0)
            .filter_map(|(offer, count)| {
                plan.pool
                    .get(*offer)
                    .map(|offer| format!("{} {count}", offer.offer_id))
            })
            .collect();
        [
            format!(
                "users {}, holdout {} ({:.1}%), rows {}",
                self.users,
                self.holdout,
                100.0 * self.holdout as f64 / self.users.max(1) as f64,
                self.rows
            ),
            format!("most often first: {}", shown.join(", ")),
        ]
    }
}
