//! The numbers of the report routes (rows 8, 13, 15, 16), computed by the
//! database: the seed loaded every tenant and subscription and looped; here
//! each rule is an aggregation expression or stage, so a function receives
//! only the rows it answers with, whatever the size of the platform.
//!
//! The rules are the seed's (`normalizeToMonthly`, `tenantHealth`, the
//! currency order); where it rounds it does so like JavaScript's
//! `Math.round` (halves up), which MongoDB's `$round` (halves to even) is not.

use serde_json::{json, Value};

use crate::data_api::{Sort, Stage};
use crate::ejson::{self, DateTime, ObjectId};

/// The order totals are listed in (the seed's `ORDER`).
pub const CURRENCY_ORDER: [&str; 3] = ["DKK", "EUR", "USD"];

/// JavaScript's `Math.round`: the nearest integer, halves toward +∞.
pub fn js_round(x: f64) -> i64 {
    let f = x.floor();
    (if x - f >= 0.5 { f + 1.0 } else { f }) as i64
}

/// `Math.round(x / d)` for a subscription amount, as an expression:
/// `floor(x / d + 0.5)`. Exact for the integral minor units stored: `x / d`
/// is a half only when it is exactly representable.
fn half_up_div(x: &Value, d: i64) -> Value {
    json!({ "$floor": { "$add": [{ "$divide": [x, d] }, 0.5] } })
}

/// `normalizeToMonthly(perSeatAmount * seats, cycle)` over a subscription
/// document: monthly as is, quarterly a third, anything else (yearly) a
/// twelfth, each rounded half up. A missing amount or seat count is 0.
pub fn monthly_minor() -> Value {
    let amount = json!({ "$multiply": [{ "$ifNull": ["$perSeatAmount", 0] }, { "$ifNull": ["$seats", 0] }] });
    json!({ "$switch": {
        "branches": [
            { "case": { "$eq": ["$cycle", "monthly"] }, "then": amount },
            { "case": { "$eq": ["$cycle", "quarterly"] }, "then": half_up_div(&amount, 3) },
        ],
        "default": half_up_div(&amount, 12),
    } })
}

/// Active subscriptions with their monthly amount, as a `$lookup` pipeline
/// over a tenant's subscriptions (or the stages over the collection).
pub fn active_subscriptions() -> Vec<Stage> {
    vec![
        Stage::Match(json!({ "status": "active" })),
        Stage::Project(json!({
            "plan": 1, "cycle": 1, "currency": 1, "seats": 1, "tenantId": 1,
            "monthlyMinor": monthly_minor(),
            // The seed: `custom` is a subscription without a priced amount.
            "custom": { "$eq": [{ "$ifNull": ["$perSeatAmount", 0] }, 0] },
        })),
    ]
}

/// Per tenant: active users and those created since `since` (the seed's
/// one-pass `$cond` count), joined by the users' `tenantIds` index.
pub fn user_counts(since: DateTime) -> Stage {
    Stage::LookupPipeline {
        from: crate::data_api::coll::USERS,
        local_field: "_id",
        foreign_field: "tenantIds",
        pipeline: vec![
            Stage::Match(json!({ "active": true })),
            Stage::Group(json!({
                "_id": null,
                "n": { "$sum": 1 },
                "new30d": { "$sum": { "$cond": [{ "$gte": ["$createdAt", since.ejson()] }, 1, 0] } },
            })),
        ],
        as_field: "_userCounts",
    }
}

/// `userCount`, `newUserCount30d`, `healthScore`, `healthBand` from
/// [`user_counts`] (three stages: the band reads the score).
pub fn with_health() -> Vec<Stage> {
    vec![
        Stage::AddFields(json!({
            "userCount": { "$sum": "$_userCounts.n" },
            "newUserCount30d": { "$sum": "$_userCounts.new30d" },
        })),
        Stage::Project(json!({ "_userCounts": 0 })),
        Stage::AddFields(json!({ "healthScore": health_score("$userCount") })),
        Stage::AddFields(json!({ "healthBand": {
            "$switch": {
                "branches": [
                    { "case": { "$gte": ["$healthScore", 80] }, "then": "healthy" },
                    { "case": { "$gte": ["$healthScore", 60] }, "then": "watch" },
                ],
                "default": "at-risk",
            }
        } })),
    ]
}

/// The seed's `tenantHealth`: 100, less 15 when pending or 60 when
/// suspended/deleted; with seats, less 25 below a quarter used, 10 below
/// half, 5 above all; less 10 per provisioning `error` and 5 per `pending`
/// (Authentik, Stalwart, OCIS); clamped to 0–100. Seat ratios are compared
/// as products (`4n < seats` is `n / seats < 0.25`), so no division.
fn health_score(users: &str) -> Value {
    let status = json!({ "$switch": {
        "branches": [
            { "case": { "$eq": ["$status", "pending"] }, "then": 15 },
            { "case": { "$in": ["$status", ["suspended", "deleted"]] }, "then": 60 },
        ],
        "default": 0,
    } });
    let seats = json!({ "$ifNull": ["$seats", 0] });
    let adoption = json!({ "$cond": [
        { "$gt": [seats, 0] },
        { "$switch": {
            "branches": [
                { "case": { "$lt": [{ "$multiply": [users, 4] }, seats] }, "then": 25 },
                { "case": { "$lt": [{ "$multiply": [users, 2] }, seats] }, "then": 10 },
                { "case": { "$gt": [users, seats] }, "then": 5 },
            ],
            "default": 0,
        } },
        0,
    ] });
    let provisioning: Vec<Value> = ["authentik", "stalwart", "ocis"]
        .iter()
        .map(|system| {
            let field = format!("$provisioningStatus.{system}");
            json!({ "$switch": {
                "branches": [
                    { "case": { "$eq": [field, "error"] }, "then": 10 },
                    { "case": { "$eq": [field, "pending"] }, "then": 5 },
                ],
                "default": 0,
            } })
        })
        .collect();
    let penalty = json!({ "$add": [status, adoption, { "$add": provisioning }] });
    json!({ "$max": [0, { "$min": [100, { "$subtract": [100, penalty] }] }] })
}

/// Months of `createdAt` (UTC `YYYY-MM`), oldest first; documents without
/// a date are skipped, as in the seed. `extra` adds accumulators.
pub fn by_month(extra: Value) -> Vec<Stage> {
    let mut group = json!({ "_id": { "$dateToString": { "format": "%Y-%m", "date": "$createdAt" } }, "count": { "$sum": 1 } });
    if let (Some(g), Value::Object(more)) = (group.as_object_mut(), extra) {
        g.extend(more);
    }
    vec![Stage::Match(json!({ "createdAt": { "$type": "date" } })), Stage::Group(group), Stage::Sort(Sort::asc("_id"))]
}

/// Revenue by plan × currency from rows with `plan`, `currency`,
/// `monthlyMinor` under `prefix`. Ties on the amount: plan, then currency,
/// alphabetically.
pub fn revenue_by_plan(prefix: &str) -> Vec<Stage> {
    vec![
        Stage::Group(json!({
            "_id": { "plan": format!("${prefix}plan"), "currency": format!("${prefix}currency") },
            "monthlyMinor": { "$sum": format!("${prefix}monthlyMinor") },
            "count": { "$sum": 1 },
        })),
        Stage::Sort(Sort::desc("monthlyMinor").then_asc("_id.plan").then_asc("_id.currency")),
    ]
}

/// Sums per currency from rows under `prefix`.
pub fn totals(prefix: &str) -> Vec<Stage> {
    vec![Stage::Group(json!({ "_id": format!("${prefix}currency"), "monthlyMinor": { "$sum": format!("${prefix}monthlyMinor") } }))]
}

/// An integer the database computed (Int32, Int64 or an integral double).
pub fn int_of(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(ejson::int).unwrap_or(0)
}

/// A string field, or JSON null.
pub fn str_of(v: &Value, key: &str) -> Value {
    v.get(key).and_then(Value::as_str).map(|s| json!(s)).unwrap_or(Value::Null)
}

/// An ObjectId field as hex, or JSON null.
pub fn id_of(v: &Value, key: &str) -> Value {
    v.get(key).and_then(|x| serde_json::from_value::<ObjectId>(x.clone()).ok()).map(|o| json!(o.to_hex())).unwrap_or(Value::Null)
}

/// `[{currency, monthlyMinor}]` in the order DKK, EUR, USD; currencies
/// without subscriptions absent, any other currency after those, by code.
pub fn ordered_totals(groups: &[Value]) -> Value {
    let mut rows: Vec<(usize, String, i64)> = groups
        .iter()
        .filter_map(|g| {
            let c = g.get("_id")?.as_str()?.to_owned();
            let rank = CURRENCY_ORDER.iter().position(|k| *k == c).unwrap_or(CURRENCY_ORDER.len());
            Some((rank, c, int_of(g, "monthlyMinor")))
        })
        .collect();
    rows.sort();
    Value::Array(rows.into_iter().map(|(_, currency, m)| json!({ "currency": currency, "monthlyMinor": m })).collect())
}

/// `[{plan, currency, monthlyMinor, count}]` from [`revenue_by_plan`].
pub fn plan_rows(groups: &[Value]) -> Value {
    Value::Array(
        groups
            .iter()
            .map(|g| {
                let id = g.get("_id").cloned().unwrap_or(Value::Null);
                json!({
                    "plan": str_of(&id, "plan"),
                    "currency": str_of(&id, "currency"),
                    "monthlyMinor": int_of(g, "monthlyMinor"),
                    "count": int_of(g, "count"),
                })
            })
            .collect(),
    )
}

/// The documents of one `$facet` output.
pub fn facet<'a>(out: &'a [Value], name: &str) -> &'a [Value] {
    out.first().and_then(|d| d.get(name)).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_round_rounds_halves_up() {
        let cases = [(2.5, 3), (3.5, 4), (-2.5, -2), (2.4999, 2), (0.49999999999999994, 0), (28.499999999999996, 28), (7.0, 7)];
        for (x, want) in cases {
            assert_eq!(js_round(x), want, "{x}");
        }
    }

    #[test]
    fn totals_follow_dkk_eur_usd_and_leave_out_the_absent() {
        let groups = [
            json!({"_id": "USD", "monthlyMinor": 5}),
            json!({"_id": "DKK", "monthlyMinor": {"$numberDouble": "3.0"}}),
            json!({"_id": "GBP", "monthlyMinor": 1}),
        ];
        assert_eq!(
            ordered_totals(&groups),
            json!([{"currency": "DKK", "monthlyMinor": 3}, {"currency": "USD", "monthlyMinor": 5}, {"currency": "GBP", "monthlyMinor": 1}])
        );
    }
}
