//! The OpenAPI 3 document. Paths are collected from the handlers' `#[utoipa::path]` attributes
//! by the router itself (see [`crate::build`]), so the document cannot drift from the routes.

use serde_json::{json, Map, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use m365backup_core::jobs::schedule::{
    HOURS_PER_WEEK, MAX_OFFSET_MINUTES, MAX_RETRIES, MAX_RETRY_WAIT,
};

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
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        refine_schemas(schemas);
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
                if let Some(schema) = creation_body(method, path) {
                    if let Some(at) = op
                        .get_mut("requestBody")
                        .and_then(|b| b.pointer_mut("/content/application~1json/schema"))
                    {
                        *at = json!({"$ref": format!("#/components/schemas/{schema}")});
                    }
                }
                if method == "post"
                    && (path.ends_with("/SelectedItems") || path.ends_with("/ExcludedItems"))
                {
                    // At least one item to add.
                    if let Some(list) = op.get_mut("requestBody").and_then(|b| {
                        b.pointer_mut("/content/application~1json/schema")
                            .and_then(Value::as_object_mut)
                    }) {
                        list.insert("minItems".into(), json!(1));
                    }
                }
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
            json!({"type": ["string", "null"], "pattern": "\\S", "maxLength": 255}),
        ),
        ("RepositoryBody", "dailyTime", time.clone()),
        (
            "RepositoryBody",
            "name",
            json!({"type": ["string", "null"], "pattern": "\\S"}),
        ),
        (
            "RepositoryBody",
            "path",
            json!({"type": ["string", "null"],
                   "description": "On PUT: the repository's path, unchanged (a GET answer sent back)"}),
        ),
        (
            "RepositoryBody",
            "objectStorage",
            json!({"type": "null", "description": "Set when the repository is added only"}),
        ),
        (
            "RepositoryBody",
            "dailyRetentionPeriod",
            json!({"type": ["integer", "null"], "minimum": 1, "maximum": 36500, "description": "Days"}),
        ),
        (
            "RepositoryBody",
            "monthlyRetentionPeriod",
            json!({"type": ["integer", "null"], "minimum": 1, "maximum": 1200, "description": "Months"}),
        ),
        (
            "ObjectStorageBody",
            "type",
            json!({"type": "string", "enum": ["S3Compatible", "AmazonS3", "AzureBlob"]}),
        ),
        ("SchedulePolicyBody", "dailyTime", time),
        (
            "SchedulePolicyBody",
            "retryNumber",
            json!({"type": ["integer", "null"], "minimum": 1, "maximum": MAX_RETRIES}),
        ),
        (
            "SchedulePolicyBody",
            "retryWaitInterval",
            json!({"type": ["integer", "null"], "minimum": 1, "maximum": MAX_RETRY_WAIT,
                   "description": "Minutes"}),
        ),
        (
            "BackupWindowBody",
            "backupWindow",
            json!({"type": ["array", "null"], "items": {"type": "boolean"},
                   "minItems": HOURS_PER_WEEK, "maxItems": HOURS_PER_WEEK,
                   "description": "One value per hour of the week from Sunday 00:00"}),
        ),
        (
            "BackupWindowBody",
            "minuteOffset",
            json!({"type": ["integer", "null"], "minimum": -MAX_OFFSET_MINUTES,
                   "maximum": MAX_OFFSET_MINUTES}),
        ),
        (
            "GroupMemberBody",
            "groupId",
            json!({"type": "string", "pattern": format!("^ *{GUID}({GUID})? *$"),
                   "description": "Composite id of a security group of the organization"}),
        ),
        (
            "GroupMemberBody",
            "login",
            json!({"type": "string", "pattern": "\\S",
                   "description": "The account's user principal name"}),
        ),
        (
            "GroupMemberBody",
            "type",
            json!({"type": "string", "pattern": "^[Uu][Ss][Ee][Rr]$", "description": "User (any letter case)"}),
        ),
    ]
}

/// The bodies that create a resource, whose schema differs from the one that edits it:
/// (method, path) → component.
fn creation_body(method: &str, path: &str) -> Option<&'static str> {
    match (method, path) {
        ("post", "/v5/Organizations/{organizationId}/Jobs") => Some("NewJobBody"),
        ("post", "/v5/BackupRepositories") => Some("NewRepositoryBody"),
        _ => None,
    }
}

/// What the handlers check across properties, which the derived schemas cannot say.
fn refine_schemas(schemas: &mut Map<String, Value>) {
    if let Some(job) = schemas.get_mut("JobBody") {
        // Items given with a SelectedItems type replace the stored ones: at least one.
        job["if"] = json!({"required": ["backupType", "selectedItems"],
                           "properties": {"backupType": {"const": "SelectedItems"},
                                          "selectedItems": {"type": "array"}}});
        job["then"] = json!({"properties": {"selectedItems": {"minItems": 1}}});
    }
    if let Some(job) = schemas.get("JobBody").cloned() {
        // A new job needs its name, and a SelectedItems job at least one item (on edit, the
        // job's stored items count too).
        let new_job = json!({"allOf": [job, {
            "required": ["name"],
            "properties": {"name": {"type": "string"}},
            "if": {"required": ["backupType"], "properties": {"backupType": {"const": "SelectedItems"}}},
            "then": {"required": ["selectedItems"], "properties": {"selectedItems": {"type": "array", "minItems": 1}}}
        }]});
        schemas.insert("NewJobBody".into(), new_job);
    }
    if let Some(repository) = schemas.get("RepositoryBody").cloned() {
        let mut new_repository = repository;
        if let Some(props) = new_repository
            .get_mut("properties")
            .and_then(Value::as_object_mut)
        {
            props.insert(
                "objectStorage".into(),
                json!({"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/ObjectStorageBody"}]}),
            );
            props.insert(
                "path".into(),
                json!({"type": ["string", "null"], "description": "Absolute folder on the server"}),
            );
            props.insert("name".into(), json!({"type": "string", "pattern": "\\S"}));
            props.insert(
                "encryptionPassword".into(),
                json!({"type": ["string", "null"], "minLength": 8,
                       "description": "A new repository's password; a random one when absent"}),
            );
        }
        new_repository["required"] = json!(["name"]);
        new_repository["oneOf"] = json!([
            {"required": ["path"], "properties": {"path": {"type": "string", "pattern": "^/"}, "objectStorage": {"type": "null"}}},
            {"required": ["objectStorage"], "properties": {"objectStorage": {"type": "object"}, "path": {"type": "null"}}}
        ]);
        schemas.insert("NewRepositoryBody".into(), new_repository);
    }
    schemas.insert("BackupItemBody".into(), backup_item());
    if let Some(connection) = schemas.get_mut("ConnectionSettingsBody") {
        connection["oneOf"] = connection_sign_in();
    }
    if let Some(organization) = schemas.get_mut("OrganizationBody") {
        let settings = json!({"$ref": "#/components/schemas/ConnectionSettingsBody"});
        organization["anyOf"] = json!([
            {"required": ["sharePointOnlineSettings"], "properties": {"sharePointOnlineSettings": settings}},
            {"required": ["exchangeOnlineSettings"], "properties": {"exchangeOnlineSettings": settings}}
        ]);
    }
}

/// One of the two sign-ins: the application alone (its secret, the tenant's name), or an
/// account with its password through the application (not with MFA).
fn connection_sign_in() -> Value {
    let text = json!({"type": "string", "pattern": "\\S"});
    let secret = json!({"type": "string", "minLength": 1});
    json!([
        {"required": ["useApplicationOnlyAuth", "applicationId", "applicationSecret", "officeOrganizationName"],
         "properties": {"useApplicationOnlyAuth": {"const": true}, "applicationId": text,
                        "applicationSecret": secret, "officeOrganizationName": text}},
        {"required": ["applicationId", "account", "password"],
         "properties": {"useApplicationOnlyAuth": {"const": false}, "useMfa": {"const": false},
                        "applicationId": text, "password": secret,
                        "account": {"type": "string", "pattern": "^\\s*[^@\\s]\\S*@\\S*[^@\\s]\\s*$",
                                    "description": "user@domain"}}}
    ])
}

/// A `selectedItems`/`excludedItems` entry, one shape per `type`.
fn backup_item() -> Value {
    let flag = json!({"type": ["boolean", "null"]});
    let yes = json!({"const": true});
    let no = json!({"enum": [false, null]});
    let text = json!({"type": "string", "pattern": "\\S"});
    let nullable = json!({"type": ["string", "null"]});
    let object = |names: &[&str]| {
        let props: Map<String, Value> = names
            .iter()
            .map(|n| ((*n).to_owned(), nullable.clone()))
            .collect();
        json!({"type": "object", "properties": props})
    };
    let mut site = object(&["id", "url", "title", "name"]);
    site["anyOf"] = json!([
        {"required": ["id"], "properties": {"id": text}},
        {"required": ["url"], "properties": {"url": text, "id": {"type": "null"}}}
    ]);
    // A directory object by its (composite) id, else by name; a blank id is no id.
    let object_id = json!({"type": "string", "pattern": format!("^\\s*{GUID}({GUID})?\\s*$")});
    let no_id = json!({"type": ["string", "null"], "pattern": "^\\s*$"});
    let mut user = object(&["id", "name", "displayName"]);
    user["anyOf"] = json!([
        {"required": ["id"], "properties": {"id": object_id}},
        {"required": ["name"], "properties": {"name": text, "id": no_id}}
    ]);
    let mut group = object(&["id", "name", "displayName"]);
    group["anyOf"] = json!([
        {"required": ["id"], "properties": {"id": object_id}},
        {"required": ["name"], "properties": {"name": text, "id": no_id}},
        {"required": ["displayName"], "properties": {"displayName": text, "id": no_id, "name": {"type": "null"}}}
    ]);
    let flags = |names: &[&str], value: &Value| -> Map<String, Value> {
        names
            .iter()
            .map(|n| ((*n).to_owned(), value.clone()))
            .collect()
    };
    let shape = |kind: &str, mut props: Map<String, Value>, required: &[&str], rule: Value| {
        props.insert("type".into(), json!({"const": kind}));
        let mut required: Vec<&str> = required.to_vec();
        required.push("type");
        let mut s = json!({"type": "object", "required": required, "properties": props});
        if !rule.is_null() {
            s["anyOf"] = rule;
        }
        s
    };
    let all_flags = [
        "oneDrive",
        "mailbox",
        "archiveMailbox",
        "members",
        "memberOnedrive",
        "memberSite",
        "memberMailbox",
        "memberArchiveMailbox",
        "groupMailbox",
        "groupSite",
        "teams",
    ];
    let mut base = flags(&all_flags, &flag);
    base.insert(
        "user".into(),
        json!({"oneOf": [{"type": "null"}, {"type": "object"}]}),
    );
    base.insert(
        "group".into(),
        json!({"oneOf": [{"type": "null"}, {"type": "object"}]}),
    );
    let with = |extra: Map<String, Value>| {
        let mut m = base.clone();
        m.extend(extra);
        m
    };
    let mut site_item = Map::new();
    site_item.insert("site".into(), site);
    let mut user_item = flags(&["mailbox", "archiveMailbox"], &no);
    user_item.insert("user".into(), user);
    user_item.insert("site".into(), flag.clone());
    let mut group_item = flags(
        &["groupMailbox", "memberMailbox", "memberArchiveMailbox"],
        &no,
    );
    group_item.insert("group".into(), group);
    group_item.insert("site".into(), flag.clone());
    let mut partial = flags(&["mailbox", "archiveMailbox", "teams"], &no);
    partial.insert("site".into(), flag.clone());
    let personal = {
        let mut m = Map::new();
        m.insert("site".into(), json!({}));
        m
    };
    json!({
        "description": "A `selectedItems`/`excludedItems` entry: `type` says which fields count (mailboxes and Teams are not backed up by this server). `site` is an object for type `Site` and a boolean (the personal site) for the others. An item listed twice is kept once.",
        "oneOf": [
            shape("Site", with(site_item), &["site"], Value::Null),
            shape("User", with(user_item), &["user"], json!([
                {"properties": {"oneDrive": {"enum": [true, null]}}},
                {"required": ["site"], "properties": {"site": yes}}
            ])),
            shape("Group", with(group_item), &["group"], json!([
                {"required": ["site"], "properties": {"site": yes}},
                {"required": ["groupSite"], "properties": {"site": {"type": "null"}, "groupSite": yes}},
                {"required": ["members"], "properties": {"members": yes}, "anyOf": [
                    {"required": ["memberOnedrive"], "properties": {"memberOnedrive": yes}},
                    {"required": ["memberSite"], "properties": {"memberSite": yes}}
                ]}
            ])),
            shape("PartialOrganization", with(partial), &[], json!([
                {"required": ["oneDrive"], "properties": {"oneDrive": yes}},
                {"required": ["site"], "properties": {"site": yes}}
            ])),
            shape("PersonalSites", with(personal), &[], Value::Null)
        ]
    })
}

/// Properties a body must have: (component schema, property).
const REQUIRED: &[(&str, &str)] = &[("GroupMemberBody", "type")];
