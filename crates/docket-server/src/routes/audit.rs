//! The due-process audit (`/v1/audit`): the bundled rule sets and calendar
//! over the projections, one page of findings, within the reader's scope.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use docket_fold::query;
use docket_model::Name;

use super::extract::Params;
use crate::auth::authenticate;
use crate::error::ApiError;
use crate::App;

/// Parameters of `/v1/audit`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditParams {
    /// Only findings on this list (one the reader designates, unless it has oversight).
    #[schemars(with = "Option<super::queries::NameParam>")]
    list: Option<String>,
    /// Only findings where this agency had to act (the reader's own; the default for a reader without oversight).
    #[schemars(with = "Option<super::queries::NameParam>")]
    agency: Option<String>,
    /// What the ledger held then (default: everything it holds).
    #[schemars(with = "Option<super::queries::AsOfParam>")]
    as_of: Option<String>,
    /// What was in force then (default: the as_of time, or now).
    #[schemars(with = "Option<super::queries::ValidAtParam>")]
    valid_at: Option<String>,
    /// Findings to skip (default 0).
    offset: Option<usize>,
    /// Most findings (default 1,000; larger asks are cut to 10,000).
    limit: Option<usize>,
}

/// Most findings in one audit page.
pub(crate) const AUDIT_PAGE_MAX: usize = 10_000;

/// Findings in an audit page when the request names no `limit`.
pub(crate) const AUDIT_PAGE_DEFAULT: usize = 1000;

/// The due-process audit (bundled rule sets and calendar), a page of its findings.
pub(super) async fn audit(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Params(mut params): Params<AuditParams>,
) -> Result<Json<Value>, ApiError> {
    let reader = authenticate(&app, &method, &uri, &headers)?;
    // An agency reads the findings on the lists it designates, or those where
    // it had to act (the default); oversight reads them all.
    let known = |list: &str| Name::parse(list).is_ok_and(|list| app.registry.current().list(&list).is_some());
    match (params.agency.as_deref(), params.list.as_deref()) {
        (Some(agency), _) => reader.own(agency, "agency", "the audit")?,
        (None, Some(list)) if known(list) => reader.designates(list)?,
        (None, _) if !reader.oversight => params.agency = Some(reader.agency.to_string()),
        (None, _) => {}
    }
    let worker = app.clone();
    tokio::task::spawn_blocking(move || -> Result<Json<Value>, ApiError> {
        let store = &worker.store;
        let as_of = query::resolve(store, params.as_of.as_deref(), params.valid_at.as_deref())?;
        let scope = docket_audit::audit::Scope {
            list: params.list.as_deref().map(|l| query::name("list", l)).transpose()?,
            agency: params.agency.as_deref().map(|a| query::name("agency", a)).transpose()?,
        };
        let (offset, limit) =
            (params.offset.unwrap_or(0), params.limit.unwrap_or(AUDIT_PAGE_DEFAULT).min(AUDIT_PAGE_MAX));
        let mut total = 0usize;
        let mut page = vec![];
        let report = docket_audit::audit::audit_each(
            store,
            as_of,
            &scope,
            &worker.rule_sets,
            &worker.calendar,
            &mut |finding| {
                if total >= offset && page.len() < limit {
                    page.push(finding);
                }
                total += 1;
            },
        )
        .map_err(|e| match e {
            docket_audit::audit::AuditError::UnknownList(list) => {
                ApiError::not_found(format!("list \"{list}\" is not defined"))
            }
            other => ApiError::internal(other.to_string()),
        })?;
        let mut value = json!(report);
        value["findings"] = json!(page);
        value["total_findings"] = json!(total);
        value["offset"] = json!(offset);
        Ok(Json(value))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
}
