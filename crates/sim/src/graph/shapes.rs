//! How drives, sites and drive items look in Graph's JSON, as OneDrive for Business and
//! SharePoint show them.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::iso;
use crate::tenant::{
    Drive, DriveOwner, DriveState, Grant, Item, LinkScope, Permission, Role, SiteRef, Tenant,
};
use crate::SharedSim;

/// Percent-encodes a URL path segment (everything but RFC 3986's unreserved characters).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn drive_type(drive: &Drive) -> &'static str {
    if matches!(drive.owner, DriveOwner::User(_)) {
        "business"
    } else {
        "documentLibrary"
    }
}

/// `{"user": {...}}` for a user, or the application when nobody is named.
pub fn identity(tenant: &Tenant, user: Option<usize>) -> Value {
    match user {
        Some(u) => {
            let u = &tenant.users[u];
            json!({"user": {"id": u.id, "displayName": u.display_name, "email": u.user_principal_name}})
        }
        None => json!({"application": {"displayName": "SharePoint"}}),
    }
}

pub fn drive_json(sim: &SharedSim, d: &Drive) -> Value {
    let owner = match d.owner {
        DriveOwner::User(u) => identity(&sim.tenant, Some(u)),
        DriveOwner::Site(s) => {
            json!({"group": {"displayName": sim.tenant.sites[s].display_name}})
        }
    };
    let state = d.state.read().unwrap_or_else(|p| p.into_inner());
    let used: u64 = state
        .items
        .iter()
        .filter(|i| !i.deleted)
        .filter_map(|i| i.file.map(|f| f.size))
        .sum();
    json!({
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "driveType": drive_type(d),
        "webUrl": d.web_url,
        "createdDateTime": iso(state.items[0].created),
        "owner": owner,
        "quota": {"used": used, "total": 1u64 << 40, "remaining": (1u64 << 40) - used, "state": "normal"},
    })
}

/// Graph's site. A site collection's root site (team, group and personal sites) has the `root`
/// facet; a sub-site has none.
pub fn site_json(tenant: &Tenant, site: SiteRef) -> Value {
    let (id, name, display_name, web_url, created, personal) = match site {
        SiteRef::Team(s) => {
            let s = &tenant.sites[s];
            (
                &s.id,
                s.name.clone(),
                s.display_name.clone(),
                &s.web_url,
                s.created,
                false,
            )
        }
        SiteRef::Personal(u) => {
            let u = &tenant.users[u];
            let name = u
                .personal_site
                .web_url
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_owned();
            (
                &u.personal_site.id,
                name,
                u.display_name.clone(),
                &u.personal_site.web_url,
                u.created,
                true,
            )
        }
    };
    let host = id.split(',').next().unwrap_or_default();
    let (description, root) = match site {
        SiteRef::Team(s) => (
            tenant.sites[s].description.clone(),
            tenant.sites[s].parent.is_none(),
        ),
        SiteRef::Personal(_) => (String::new(), true),
    };
    let mut v = json!({
        "id": id,
        "name": name,
        "displayName": display_name,
        "description": description,
        "webUrl": web_url,
        "createdDateTime": iso(created),
        "isPersonalSite": personal,
        "siteCollection": {"hostname": host},
    });
    if root {
        v["root"] = json!({});
    }
    v
}

/// An item's eTag: changes with every change of the item.
pub fn etag(item: &Item) -> String {
    format!("\"{{{}}},{}\"", item.id, item.changed_seq)
}

/// A file's cTag: changes with its content only.
pub fn ctag(item: &Item) -> Option<String> {
    item.file
        .map(|f| format!("\"c:{{{}}},{}\"", item.id, f.version))
}

/// The item's web address: the drive's, then every folder and the name, encoded.
pub fn web_url(drive: &Drive, state: &DriveState, i: usize) -> String {
    let mut url = drive.web_url.clone();
    for a in state.ancestors(i).into_iter().skip(1).chain([i]) {
        if state.items[a].parent.is_some() {
            url.push('/');
            url.push_str(&encode_segment(&state.items[a].name));
        }
    }
    url
}

fn mime_type(name: &str) -> &'static str {
    match name
        .rsplit('.')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
        .as_str()
    {
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "txt" => "text/plain",
        "md" => "text/markdown",
        _ => "application/octet-stream",
    }
}

/// The `shared` facet of an item with explicit permissions.
fn shared_facet(tenant: &Tenant, drive: &Drive, item: &Item) -> Option<Value> {
    if item.grants.is_empty() {
        return None;
    }
    let scope = if item.grants.iter().any(|p| {
        matches!(
            p.grant,
            Grant::Link {
                scope: LinkScope::Anonymous,
                ..
            }
        )
    }) {
        "anonymous"
    } else if item
        .grants
        .iter()
        .any(|p| matches!(p.grant, Grant::Link { .. }))
    {
        "organization"
    } else {
        "users"
    };
    let owner = match drive.owner {
        DriveOwner::User(u) => Some(u),
        DriveOwner::Site(_) => item.created_by,
    };
    Some(json!({"scope": scope, "owner": identity(tenant, owner)}))
}

/// Graph's driveItem. In delta answers (`in_delta`) there is no `cTag` and no
/// `parentReference.path`; deleted items carry no name.
pub fn item_json(
    sim: &SharedSim,
    drive: &Drive,
    state: &DriveState,
    i: usize,
    counts: &HashMap<usize, u64>,
    in_delta: bool,
) -> Value {
    let item = &state.items[i];
    let tenant = &sim.tenant;
    let mut parent_ref = json!({"driveId": drive.id, "driveType": drive_type(drive)});
    if let Some(p) = &item.parent {
        parent_ref["id"] = json!(p);
        if !in_delta && !item.deleted {
            parent_ref["path"] = json!(state.parent_path(i));
        }
    }
    if item.deleted {
        let facet = if item.is_folder() { "folder" } else { "file" };
        return json!({
            "id": item.id,
            "parentReference": parent_ref,
            "lastModifiedDateTime": iso(item.modified),
            "deleted": {"state": "deleted"},
            facet: {},
        });
    }
    let mut v = json!({
        "id": item.id,
        "name": item.name,
        "eTag": etag(item),
        "createdDateTime": iso(item.created),
        "lastModifiedDateTime": iso(item.modified),
        "webUrl": web_url(drive, state, i),
        "size": item.file.map(|f| f.size).unwrap_or(0),
        "createdBy": identity(tenant, item.created_by),
        "lastModifiedBy": identity(tenant, item.modified_by),
        "fileSystemInfo": {"createdDateTime": iso(item.created), "lastModifiedDateTime": iso(item.modified)},
    });
    match item.file {
        Some(f) => {
            let hash = sim
                .content(&drive.id, item, f.content, f.size)
                .map(|c| c.quick_xor_hash());
            v["file"] =
                json!({"mimeType": mime_type(&item.name), "hashes": {"quickXorHash": hash}});
            if !in_delta {
                v["cTag"] = json!(ctag(item));
            }
        }
        None => {
            v["folder"] = json!({"childCount": counts.get(&i).copied().unwrap_or(0)});
        }
    }
    if item.parent.is_none() {
        v["root"] = json!({});
        v["name"] = json!("root");
    } else {
        v["parentReference"] = parent_ref;
    }
    if let Some(shared) = shared_facet(tenant, drive, item) {
        v["shared"] = shared;
    }
    v
}

/// One item as a single-item answer shows it (only its own children counted).
pub fn item_json_alone(sim: &SharedSim, drive: &Drive, state: &DriveState, i: usize) -> Value {
    let mut counts = HashMap::new();
    if state.items[i].is_folder() {
        let id = state.items[i].id.as_str();
        let n = state
            .items
            .iter()
            .filter(|it| !it.deleted && it.parent.as_deref() == Some(id))
            .count();
        counts.insert(i, n as u64);
    }
    item_json(sim, drive, state, i, &counts, false)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Read => "read",
        Role::Write => "write",
    }
}

/// The item's permissions: the owners' (inherited from the drive's root), then its own grants.
pub fn permissions_json(
    sim: &SharedSim,
    drive: &Drive,
    state: &DriveState,
    i: usize,
) -> Vec<Value> {
    let item = &state.items[i];
    let tenant = &sim.tenant;
    let owners = match drive.owner {
        DriveOwner::User(u) => json!({"user": identity(tenant, Some(u))["user"]}),
        DriveOwner::Site(s) => {
            json!({"siteGroup": {"displayName": format!("{} Owners", tenant.sites[s].display_name)}})
        }
    };
    let mut out = vec![json!({
        "id": inherited_permission_id(state),
        "roles": ["owner"],
        "grantedToV2": owners,
        "inheritedFrom": {"driveId": drive.id, "id": state.root_id()},
    })];
    out.extend(
        item.grants
            .iter()
            .map(|p| permission_json(sim, drive, state, i, p)),
    );
    out
}

/// The owners' permission every item inherits from the drive's root (it cannot be removed).
pub fn inherited_permission_id(state: &DriveState) -> String {
    format!("owners-{}", state.root_id())
}

/// One explicit permission of item `i`.
pub fn permission_json(
    sim: &SharedSim,
    drive: &Drive,
    state: &DriveState,
    i: usize,
    permission: &Permission,
) -> Value {
    let id = &permission.id;
    match permission.grant {
        Grant::User { user, role } => json!({
            "id": id,
            "roles": [role_name(role)],
            "grantedToV2": identity(&sim.tenant, Some(user)),
        }),
        Grant::Link { scope, role } => json!({
            "id": id,
            "roles": [role_name(role)],
            "link": {
                "scope": match scope { LinkScope::Organization => "organization", LinkScope::Anonymous => "anonymous" },
                "type": if role == Role::Write { "edit" } else { "view" },
                "webUrl": format!("{}?share={id}", web_url(drive, state, i)),
            },
        }),
    }
}
