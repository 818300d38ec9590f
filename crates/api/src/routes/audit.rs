//! `GET /v5/AuditItems` (ours, not the vendor's): the audit trail, newest first, paged and
//! filtered by operator, time and kind. There is no route to change or remove an item.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, TimeZone, Utc};
use m365backup_core::audit::{AuditChannel, AuditFilter, AuditItem, AuditKind};
use m365backup_core::ids::OperatorId;
use serde::Serialize;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

use crate::client::BaseUrl;
use crate::dates::{iso8601, parse_v5_datetime, parse_v5_day};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::links::{Href, Link};
use crate::paging::{filtered_stored_page, PageRequest, QueryParams};
use crate::state::AppState;

/// The kinds, as an enumerated string.
fn kind_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(AuditKind::ALL.iter().map(|k| k.name())))
        .build()
}

/// The `kind` filter: a kind, in any case, or several separated by commas.
fn kind_filter_schema() -> Object {
    let mut schema = kind_schema();
    schema.description =
        Some("Only items of this kind (in any letter case; several separated by commas).".into());
    schema
}

fn channel_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["Api", "Cli"]))
        .build()
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditItemView {
    id: String,
    /// When the action was asked for (ISO 8601, UTC).
    time: String,
    /// The operator's id; absent for the command line and refused sign-ins.
    #[serde(skip_serializing_if = "Option::is_none")]
    operator_id: Option<String>,
    /// The operator's name; the shell user for the command line; the name tried for a refused
    /// sign-in (escaped, cut at 64 characters).
    user_name: String,
    #[schema(schema_with = kind_schema)]
    kind: &'static str,
    /// `Api` or `Cli` (a command at a shell on the server machine).
    #[schema(schema_with = channel_schema)]
    via: &'static str,
    /// The client's address (API only).
    #[serde(skip_serializing_if = "Option::is_none")]
    client_address: Option<String>,
    /// The route (`PUT /v5/Jobs/{jobId}`) or command (`m365backup export`).
    action: String,
    /// What was acted on: the path with its ids, or the command's target.
    resource: String,
    /// A short description written by the server.
    details: String,
}

impl AuditItemView {
    fn new(item: &AuditItem) -> Self {
        Self {
            id: item.id.to_string(),
            time: iso8601(item.time),
            operator_id: item.actor.operator_id.map(|id| id.to_string()),
            user_name: item.actor.name.clone(),
            kind: item.kind.name(),
            via: match item.channel {
                AuditChannel::Api => "Api",
                AuditChannel::Cli => "Cli",
            },
            client_address: item.client.map(|ip| ip.to_string()),
            action: item.action.clone(),
            resource: item.resource.clone(),
            details: item.details.clone(),
        }
    }
}

/// A page of the trail.
#[derive(Serialize, ToSchema)]
pub struct AuditItemPage {
    offset: usize,
    limit: usize,
    results: Vec<AuditItemView>,
    /// `first`, `self`, and `prev`/`next` where such a page exists; they keep the filters.
    #[serde(rename = "_links")]
    links: BTreeMap<&'static str, Link>,
}

/// The query of `GET /v5/AuditItems` (names matched ignoring case).
#[allow(dead_code)] // documents the query for OpenAPI; the handler reads it leniently
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct AuditQuery {
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    offset: Option<u64>,
    /// Items per page (default 30).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u64>,
    /// Only this operator's items.
    operator_id: Option<uuid::Uuid>,
    /// Only items of this operator name (or name tried), ignoring letter case.
    user_name: Option<String>,
    /// From this time on: ISO 8601, `yyyy-MM-dd HH:mm:ss[.SSS]`, `yyyy.MM.dd HH:mm[:ss]`, or a
    /// date alone (from its start); the server's time zone when there is no offset.
    #[param(format = DateTime)]
    from_time: Option<String>,
    /// Up to this time, in the same forms (a date alone: to its end).
    #[param(format = DateTime)]
    to_time: Option<String>,
    #[param(schema_with = kind_filter_schema)]
    kind: Option<String>,
}

/// The audit trail (ours, not the vendor's): every successful change made through the API or
/// the command line, every sign-in (refused ones too), every restore session opened and every
/// save or restore of backed-up items; newest first.
#[utoipa::path(
    get,
    path = "/v5/AuditItems",
    tag = "AuditItems",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of the trail", body = AuditItemPage),
        (status = 400, description = "Bad paging or filter parameters", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn list_audit_items(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Query(raw): Query<HashMap<String, String>>,
) -> ApiResult<Json<AuditItemPage>> {
    let query = QueryParams::new(raw);
    let req = PageRequest::parse(&query)?;
    let (filter, keep) = parse_filter(&query, state.jobs.time_zone())?;
    let page = state
        .audit
        .list(&filter, req.offset as u64, req.limit as u64)
        .await?;
    let views = page.items.iter().map(AuditItemView::new).collect();
    let page = filtered_stored_page(
        views,
        page.total,
        &req,
        Href::collection(&base, "audititems").as_str(),
        &keep,
    );
    Ok(Json(AuditItemPage {
        offset: page.offset,
        limit: page.limit,
        results: page.results,
        links: page.links,
    }))
}

/// The filter a query asks for, and its parameters as given (for the page links).
fn parse_filter(
    q: &QueryParams,
    tz: chrono_tz::Tz,
) -> ApiResult<(AuditFilter, Vec<(&'static str, String)>)> {
    let mut keep = Vec::new();
    let mut given = |name: &'static str| {
        q.get(name).map(|v| {
            keep.push((name, v.to_owned()));
            v.trim()
        })
    };
    let operator_id = given("operatorId")
        .map(|raw| {
            raw.parse::<OperatorId>().map_err(|_| {
                ApiError::BadRequest(format!("operatorId must be a GUID, not '{raw}'"))
            })
        })
        .transpose()?;
    let operator_name = given("userName").map(str::to_owned);
    let from = given("fromTime")
        .map(|raw| time_bound("fromTime", raw, tz, Bound::Start))
        .transpose()?;
    let to = given("toTime")
        .map(|raw| time_bound("toTime", raw, tz, Bound::End))
        .transpose()?;
    // fromTime after toTime is a valid, empty window (every filter is a condition items meet).
    let kinds = given("kind")
        .map(|raw| {
            raw.split(',')
                .filter(|k| !k.trim().is_empty())
                .map(|k| k.parse::<AuditKind>().map_err(ApiError::BadRequest))
                .collect::<ApiResult<Vec<_>>>()
        })
        .transpose()?
        .unwrap_or_default();
    Ok((
        AuditFilter {
            operator_id,
            operator_name,
            from,
            to,
            kinds,
        },
        keep,
    ))
}

#[derive(Clone, Copy)]
enum Bound {
    Start,
    End,
}

/// A time filter: a v5 date and time, or a date alone meaning its first (`Start`) or last
/// (`End`) millisecond in the server's time zone.
fn time_bound(name: &str, raw: &str, tz: chrono_tz::Tz, bound: Bound) -> ApiResult<DateTime<Utc>> {
    let invalid = || {
        ApiError::BadRequest(format!(
            "{name} '{raw}' is not a date (ISO 8601, yyyy-MM-dd HH:mm:ss.SSS, yyyy.MM.dd HH:mm or yyyy-MM-dd)"
        ))
    };
    let Some(day) = parse_v5_day(raw) else {
        return parse_v5_datetime(raw, tz).ok_or_else(invalid);
    };
    let start_of = |d: chrono::NaiveDate| {
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    };
    match bound {
        Bound::Start => start_of(day),
        Bound::End => day
            .succ_opt()
            .and_then(start_of)
            .map(|t| t - chrono::Duration::milliseconds(1)),
    }
    .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> QueryParams {
        QueryParams::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn filters_are_read_leniently_and_checked() {
        let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let (f, keep) = parse_filter(
            &query(&[
                ("USERNAME", "Admin"),
                ("fromtime", "2026-03-01"),
                ("toTime", "2026-03-01"),
                ("kind", "signin, JOBSTARTED"),
            ]),
            berlin,
        )
        .unwrap();
        assert_eq!(f.operator_name.as_deref(), Some("Admin"));
        assert_eq!(
            f.from,
            Some("2026-02-28T23:00:00Z".parse::<DateTime<Utc>>().unwrap())
        );
        assert_eq!(
            f.to,
            Some("2026-03-01T22:59:59.999Z".parse::<DateTime<Utc>>().unwrap())
        );
        assert_eq!(f.kinds, [AuditKind::SignIn, AuditKind::JobStarted]);
        assert_eq!(keep.len(), 4);

        let utc = chrono_tz::Tz::UTC;
        for bad in [
            ("operatorId", "nope"),
            ("fromTime", "yesterday"),
            ("kind", "Hacked"),
        ] {
            assert!(parse_filter(&query(&[bad]), utc).is_err(), "{bad:?}");
        }
        assert!(parse_filter(
            &query(&[("fromTime", "2026-03-02"), ("toTime", "2026-03-01")]),
            utc
        )
        .is_ok());
        assert_eq!(
            parse_filter(&query(&[]), utc).unwrap().0,
            AuditFilter::default()
        );
    }
}
