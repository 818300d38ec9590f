//! Re-creating the sharing a backup recorded on an item: each explicit permission (not the
//! ones inherited from the drive) becomes an invitation of the same user with the same role,
//! or a sharing link of the same type and scope. A permission that cannot be re-created is
//! counted and named; the item itself stays restored.

use m365backup_repo::Item;
use serde_json::Value;

use super::failure_reason;
use super::tree::Job;

/// One permission to re-create.
#[derive(Debug, PartialEq, Eq)]
enum Grant {
    User { email: String, roles: Vec<String> },
    Link { kind: String, scope: String },
}

/// The explicit permissions of a recorded `permissions` list.
fn grants(permissions: &Value) -> Vec<Grant> {
    let Some(list) = permissions.as_array() else {
        return Vec::new();
    };
    list.iter()
        .filter(|p| p.get("inheritedFrom").is_none())
        .filter_map(grant)
        .collect()
}

fn grant(p: &Value) -> Option<Grant> {
    let roles: Vec<String> = p
        .get("roles")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .filter(|r| matches!(*r, "read" | "write"))
        .map(str::to_owned)
        .collect();
    if let Some(link) = p.get("link") {
        return Some(Grant::Link {
            kind: link.get("type")?.as_str()?.to_owned(),
            scope: link
                .get("scope")
                .and_then(Value::as_str)
                .unwrap_or("organization")
                .to_owned(),
        });
    }
    let user = p
        .get("grantedToV2")
        .or_else(|| p.get("grantedTo"))?
        .get("user")?;
    let email = user
        .get("email")
        .and_then(Value::as_str)
        .or_else(|| user.get("id").and_then(Value::as_str))?;
    if roles.is_empty() {
        return None;
    }
    Some(Grant::User {
        email: email.to_owned(),
        roles,
    })
}

/// Re-creates `item`'s recorded sharing on the restored item `target`.
pub async fn restore_sharing(job: &Job, item: &Item, target: &str, path: &str) {
    let Some(permissions) = &item.permissions else {
        return;
    };
    let pool = &job.ctx.pool;
    for grant in grants(permissions) {
        let result = match &grant {
            Grant::User { email, roles } => pool.invite(&job.drive, target, email, roles).await,
            Grant::Link { kind, scope } => pool.create_link(&job.drive, target, kind, scope).await,
        };
        if let Err(e) = result {
            job.ctx.tally.permission_failed(path, failure_reason(&e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn explicit_permissions_become_grants() {
        let recorded = json!([
            {"id": "owners", "roles": ["owner"], "inheritedFrom": {"id": "root"}},
            {"id": "p1", "roles": ["write"], "grantedToV2": {"user": {"email": "a@x.com"}}},
            {"id": "p2", "roles": ["read"], "link": {"type": "view", "scope": "anonymous"}},
            {"id": "p3", "roles": ["owner"], "grantedToV2": {"user": {"email": "b@x.com"}}},
        ]);
        assert_eq!(
            grants(&recorded),
            vec![
                Grant::User {
                    email: "a@x.com".into(),
                    roles: vec!["write".into()]
                },
                Grant::Link {
                    kind: "view".into(),
                    scope: "anonymous".into()
                },
            ]
        );
        assert!(grants(&json!({"not": "a list"})).is_empty());
    }
}
