//! The OpenAPI 3 document. Paths are collected from the handlers' `#[utoipa::path]` attributes
//! by the router itself (see [`crate::build`]), so the document cannot drift from the routes.

use serde_json::{json, Map, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::paging::{DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "m365backup REST API",
        version = "v5",
        description = "Management API of m365backup, wire-compatible with the Veeam Backup for Microsoft Office 365 v5 REST API for the resources it implements. Paths are case-insensitive."
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "Token", description = "Operator sign-in and sign-out"),
        (name = "Organizations", description = "Microsoft 365 organizations"),
        (name = "BackupAccounts", description = "Accounts the backup engine spreads SharePoint/OneDrive traffic across"),
        (name = "Groups", description = "Groups of an organization and their members"),
        (name = "Users", description = "Users of an organization"),
        (name = "Proxies", description = "Backup workers: each server node"),
        (name = "BackupRepositories", description = "Where backups live: local folders and object storage"),
        (name = "AuditItems", description = "(ours, not the vendor's) The audit trail: who changed what or read tenant data, when, and from where"),
    )
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub const SWAGGER_PATH: &str = "/swagger/v5/swagger.json";

/// The document as served: the one collected from the handlers, completed with what the layers
/// around every handler answer, so that it names every status a route can give and every
/// constraint the server enforces (issue 15; `scripts/schemathesis` holds it to that).
pub fn served(openapi: &utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(openapi).unwrap_or_else(|_| json!({}));
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (schema, property, values) in BODY_ENUMS {
            let at = schemas
                .get_mut(*schema)
                .and_then(|s| s.get_mut("properties"))
                .and_then(|p| p.get_mut(*property))
                .and_then(Value::as_object_mut);
            if let Some(at) = at {
                let mut choices: Vec<Value> = values.iter().map(|v| json!(v)).collect();
                choices.push(Value::Null);
                at.remove("type");
                at.insert("enum".into(), Value::Array(choices));
            }
        }
    }
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (schema, property, constraint) in body_constraints() {
            let Some(target) = schemas.get_mut(schema).and_then(Value::as_object_mut) else {
                continue;
            };
            if let Some(p) = target
                .get_mut("properties")
                .and_then(|p| p.get_mut(property))
            {
                *p = constraint;
            }
            if let Some(required) = REQUIRED
                .iter()
                .find(|(s, p)| *s == schema && *p == property)
            {
                let list = target.entry("required").or_insert_with(|| json!([]));
                if let Some(list) = list.as_array_mut() {
                    list.push(json!(required.1));
                }
            }
        }
    }
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                let Some(op) = op.as_object_mut() else {
                    continue;
                };
                if method == "post" {
                    if let Some(schema) = action_body(path) {
                        op.insert(
                            "requestBody".into(),
                            json!({"required": true,
                                   "content": {"application/json": {"schema": schema}}}),
                        );
                    }
                }
                complete_operation(op);
            }
        }
    }
    doc
}

/// Statuses every operation may answer, whatever its handler does: (status, description, when).
const LAYER_STATUSES: &[(&str, &str, Needs)] = &[
    (
        "400",
        "Bad request: a malformed parameter or body",
        Needs::Input,
    ),
    (
        "401",
        "Not signed in (no or a bad bearer token)",
        Needs::Token,
    ),
    (
        "408",
        "The request took too long to be answered",
        Needs::Nothing,
    ),
    ("413", "Body larger than the configured limit", Needs::Body),
    ("415", "Body not in the accepted media type", Needs::Body),
    ("500", "A fault of the server", Needs::Nothing),
];

#[derive(Clone, Copy, PartialEq)]
enum Needs {
    Nothing,
    /// Query parameters or a body.
    Input,
    Token,
    Body,
}

fn complete_operation(op: &mut Map<String, Value>) {
    let body = op.contains_key("requestBody");
    let token = op.contains_key("security");
    let mut query = false;
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for param in params.iter_mut().filter_map(Value::as_object_mut) {
            if param.get("in").and_then(Value::as_str) == Some("query") {
                query = true;
                constrain_query(param);
            }
        }
    }
    let responses = op
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(responses) = responses else { return };
    for (status, description, needs) in LAYER_STATUSES {
        let applies = match needs {
            Needs::Nothing => true,
            Needs::Input => query || body,
            Needs::Token => token,
            Needs::Body => body,
        };
        if applies && !responses.contains_key(*status) {
            responses.insert((*status).to_owned(), error_response(description));
        }
    }
}

/// A query parameter as the handlers read it: an empty value is no value (so an optional one
/// may be sent empty, a required one may not), paging as [`crate::paging::PageRequest`] reads
/// it, and the filters that take GUIDs or names from a list.
fn constrain_query(param: &mut Map<String, Value>) {
    let required = param.get("required").and_then(Value::as_bool) == Some(true);
    param.insert("allowEmptyValue".into(), Value::Bool(!required));
    let name = param.get("name").and_then(Value::as_str).unwrap_or("");
    let schema = match name {
        "limit" => {
            json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT})
        }
        "offset" => json!({"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}),
        "setId" | "proxyId" | "organizationId" => json!({"type": "string", "format": "uuid"}),
        "ids" => json!({"type": "string", "pattern": format!("^ *{GUID} *(, *{GUID} *)*$"),
                        "description": "GUIDs separated by commas"}),
        "locationFilter" => json!({"type": "string", "enum": [
            "Any", "Cloud", "OnPremises", "Hybrid", "CloudAndHybrid", "OnPremisesAndHybrid"
        ], "description": "Any letter case"}),
        _ => return,
    };
    param.insert("schema".into(), schema);
}

const GUID: &str = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

/// The exact JSON Schemas of the action bodies, which the handlers read as free JSON: one
/// property naming the action (any letter case on the wire), with its options.
fn action_body(path: &str) -> Option<Value> {
    let one_of = |actions: Vec<(&str, Value)>| {
        let branches: Vec<Value> = actions
            .into_iter()
            .map(|(name, options)| {
                json!({"type": "object", "required": [name], "properties": {name: options},
                       "minProperties": 1, "maxProperties": 1})
            })
            .collect();
        json!({"oneOf": branches})
    };
    let anything = json!({"description": "Any value (null by convention)"});
    if path == "/v5/Organizations/{organizationId}/Action" {
        return Some(one_of(vec![("explore", explore_options())]));
    }
    if path == "/v5/Jobs/{jobId}/Action" {
        let mut actions: Vec<(&str, Value)> = ["start", "stop", "enable", "disable"]
            .into_iter()
            .map(|a| (a, anything.clone()))
            .collect();
        actions.push(("explore", explore_options()));
        return Some(one_of(actions));
    }
    if path == "/v5/RestoreSessions/{restoreSessionId}/Action" {
        return Some(one_of(vec![("stop", anything)]));
    }
    if path == "/v5/BackupRepositories/{repositoryId}/Action" {
        return Some(one_of(vec![
            ("applyRetention", anything.clone()),
            ("check", check_options()),
            ("rebuildCatalog", anything),
        ]));
    }
    if path.starts_with("/v5/RestoreSessions/{restoreSessionId}/Organization/") {
        let bulk = if path.ends_with("/Folders/Action") {
            Some("folders")
        } else if path.ends_with("/Documents/Action") {
            Some("documents")
        } else {
            None
        };
        return Some(one_of(vec![
            ("save", restore_options(bulk, Restore::Save)),
            (
                "restoretoOriginallocation",
                restore_options(bulk, Restore::Original),
            ),
            ("restoreTo", restore_options(bulk, Restore::Original)),
            ("copyTo", restore_options(bulk, Restore::CopyTo)),
        ]));
    }
    None
}

fn explore_options() -> Value {
    json!({
        "type": "object",
        "required": ["type"],
        "properties": {
            "datetime": {"type": ["string", "null"], "format": "date-time",
                         "description": "ISO 8601 (also yyyy-MM-dd HH:mm:ss.SSS, yyyy.MM.dd HH:mm[:ss]); now when absent"},
            "type": {"type": "string", "enum": ["veod", "vesp"], "description": "Any letter case"},
            "showDeleted": {"type": ["boolean", "null"]},
            "showAllVersions": {"type": ["boolean", "null"]}
        }
    })
}

/// `check`: nothing, or `{"readData": bool}` / `{"readDataSubset": "10%" | 0.1}`.
fn check_options() -> Value {
    json!({"oneOf": [
        {"type": "null"},
        {"type": "object", "properties": {
            "readData": {"type": ["boolean", "null"]},
            "readDataSubset": {"oneOf": [
                {"type": "number", "minimum": 0, "maximum": 1},
                {"type": "string", "pattern": "^((100(\\.0+)?|[0-9]{1,2}(\\.[0-9]+)?)%|0(\\.[0-9]+)?|1(\\.0+)?)$"}
            ]}
        }}
    ]})
}

#[derive(Clone, Copy, PartialEq)]
enum Restore {
    Save,
    Original,
    CopyTo,
}

/// The options of `save` and of the restores, on a route naming one item (`bulk` none) or
/// listing `folders`/`documents` in the options. An option left out or null is the default.
fn restore_options(bulk: Option<&str>, action: Restore) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    if let Some(list) = bulk {
        properties.insert(
            list.into(),
            json!({"type": "array", "minItems": 1, "maxItems": 10000,
                   "items": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}}),
        );
        required.push(list);
    }
    let mut extra = json!({});
    if action == Restore::Save {
        properties.insert("asZip".into(), json!({"type": ["boolean", "null"]}));
    } else {
        let name = |v: &[&str]| json!({"enum": v.iter().map(|s| json!(s)).chain([Value::Null]).collect::<Vec<_>>()});
        for (k, v) in [
            ("documentVersion", name(&["last", "all"])),
            ("documentAction", name(&["overwrite", "keep"])),
            ("documentLastVersionAction", name(&["overwrite", "merge"])),
            ("changedItems", json!({"type": ["boolean", "null"]})),
            ("deletedItems", json!({"type": ["boolean", "null"]})),
            ("restorePermissions", json!({"type": ["boolean", "null"]})),
            (
                "userName",
                json!({"type": ["string", "null"],
                                "description": "With userPassword: the account that writes"}),
            ),
            ("userPassword", json!({"type": ["string", "null"]})),
        ] {
            properties.insert(k.into(), v);
        }
        // Both (the name not blank), or neither (left out or null).
        extra = json!({"anyOf": [
            {"properties": {"userName": {"type": "null"}, "userPassword": {"type": "null"}}},
            {"required": ["userName", "userPassword"],
             "properties": {"userName": {"type": "string", "pattern": "\\S"},
                            "userPassword": {"type": "string"}}}
        ]});
        let none = json!({"type": "null"});
        if action == Restore::CopyTo {
            let target = json!({"oneOf": [
                {"type": "string", "pattern": "\\S", "maxLength": 512},
                {"type": "object", "required": ["id"],
                 "properties": {"id": {"type": "string", "pattern": "\\S", "maxLength": 512}}}
            ], "description": "A user or OneDrive (oneDrive), a site (site) of the organization"});
            properties.insert("library".into(), json!({"type": ["string", "null"]}));
            properties.insert(
                "folder".into(),
                json!({"type": ["string", "null"], "pattern": FOLDER_PATH}),
            );
            extra["oneOf"] = json!([
                {"required": ["oneDrive"], "properties": {"oneDrive": target, "site": none}},
                {"required": ["site"], "properties": {"site": target, "oneDrive": none}}
            ]);
        } else {
            for k in ["oneDrive", "site", "folder"] {
                properties.insert(k.into(), none.clone());
            }
        }
    }
    let mut object = json!({"type": "object", "properties": properties, "required": required});
    if let (Some(o), Some(e)) = (object.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    // A route naming its item takes no options at all too; a copy needs its target.
    if bulk.is_some() || action == Restore::CopyTo {
        object
    } else if action == Restore::Save {
        json!({"oneOf": [{"not": {"type": "object"}}, object]})
    } else {
        json!({"oneOf": [{"type": "null"}, object]})
    }
}

/// `copyTo.folder`: at most 64 names separated by `/`, none `.`, `..` or blank, without `\`
/// or control characters (`m365backup_engine::restore::write::options::folder_path`).
const FOLDER_PATH: &str = r"^/*([^/\\\x00-\x1f\x7f-\x9f]*[^/\\\x00-\x1f\x7f-\x9f\s.][^/\\\x00-\x1f\x7f-\x9f]*(/+[^/\\\x00-\x1f\x7f-\x9f]*[^/\\\x00-\x1f\x7f-\x9f\s.][^/\\\x00-\x1f\x7f-\x9f]*){0,63})?/*$";

const DAYS: &[&str] = &[
    "Everyday",
    "Workdays",
    "Weekends",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Body properties the handlers read as enums (in any letter case) but declare as strings:
/// (component schema, property, values); each may also be left out or null.
const BODY_ENUMS: &[(&str, &str, &[&str])] = &[
    (
        "JobBody",
        "backupType",
        &["EntireOrganization", "SelectedItems"],
    ),
    ("JobBody", "versionPolicy", &["Latest", "All"]),
    (
        "SchedulePolicyBody",
        "type",
        &["Periodically", "Daily", "ManualOnly"],
    ),
    ("SchedulePolicyBody", "dailyType", DAYS),
    (
        "SchedulePolicyBody",
        "periodicallyEvery",
        &[
            "Minutes5",
            "Minutes10",
            "Minutes15",
            "Minutes30",
            "Hours1",
            "Hours2",
            "Hours4",
            "Hours8",
        ],
    ),
    (
        "RepositoryBody",
        "retentionType",
        &["ItemLevel", "SnapshotBased"],
    ),
    (
        "RepositoryBody",
        "retentionPeriodType",
        &["Daily", "Monthly", "Yearly"],
    ),
    (
        "RepositoryBody",
        "yearlyRetentionPeriod",
        &[
            "Year1", "Years2", "Years3", "Years5", "Years7", "Years10", "Years25", "Keep",
        ],
    ),
    (
        "RepositoryBody",
        "retentionFrequencyType",
        &["Daily", "Monthly"],
    ),
    ("RepositoryBody", "dailyType", DAYS),
    ("OrganizationBody", "type", &["Office365"]),
    (
        "OrganizationBody",
        "region",
        &[
            "Worldwide",
            "USgovCommunity",
            "Germany",
            "China",
            "USgovDefence",
        ],
    ),
];

/// Body properties the handlers check beyond their type: (component schema, property, schema).
fn body_constraints() -> Vec<(&'static str, &'static str, Value)> {
    let time = json!({"type": ["string", "null"], "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
                      "description": "HH:mm:ss (or HH:mm), server time"});
    vec![
        (
            "JobBody",
            "name",
            json!({"type": "string", "pattern": "\\S", "maxLength": 255}),
        ),
        ("RepositoryBody", "dailyTime", time.clone()),
        ("SchedulePolicyBody", "dailyTime", time),
    ]
}

/// Properties a body must have: (component schema, property).
const REQUIRED: &[(&str, &str)] = &[("JobBody", "name")];
