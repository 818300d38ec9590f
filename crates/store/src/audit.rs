//! The state store's share of the audit trail ([`m365backup_core::audit::AuditStore`]): items are
//! appended, listed newest first through a filter, and purged by age; nothing updates them (the
//! migration's trigger refuses it). SQL written once for both backends, as in [`crate::queries`].

use m365backup_core::audit::AuditFilter;

/// A value bound to a filter's placeholder.
pub(crate) enum Bound {
    Text(String),
    Int(i64),
}

/// ` WHERE …` for a filter (empty when it selects everything), with `$1…` placeholders, and the
/// values to bind in order.
pub(crate) fn filter_clause(filter: &AuditFilter) -> (String, Vec<Bound>) {
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    let mut next = |condition: &str, value: Bound| {
        values.push(value);
        conditions.push(condition.replace('#', &format!("${}", values.len())));
    };
    if let Some(id) = filter.operator_id {
        next("operator_id = #", Bound::Text(id.to_string()));
    }
    if let Some(name) = &filter.operator_name {
        next("operator_key = #", Bound::Text(name.to_lowercase()));
    }
    if let Some(from) = filter.from {
        next("time >= #", Bound::Int(crate::time::to_millis(from)));
    }
    if let Some(to) = filter.to {
        next("time <= #", Bound::Int(crate::time::to_millis(to)));
    }
    if !filter.kinds.is_empty() {
        let first = values.len() + 1;
        values.extend(
            filter
                .kinds
                .iter()
                .map(|k| Bound::Text(k.name().to_owned())),
        );
        conditions.push(format!(
            "kind IN ({})",
            crate::repositories::placeholders(first, filter.kinds.len())
        ));
    }
    if conditions.is_empty() {
        (String::new(), values)
    } else {
        (format!(" WHERE {}", conditions.join(" AND ")), values)
    }
}

macro_rules! impl_audit_store {
    ($store:ty) => {
        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use m365backup_core::audit::{AuditFilter, AuditItem, AuditStore};
        use m365backup_core::jobs::store::Paged;
        use m365backup_core::store::StoreResult;

        use crate::audit::{filter_clause, Bound};
        use crate::time::to_millis;

        fn json_err(e: serde_json::Error) -> m365backup_core::StoreError {
            m365backup_core::StoreError::corrupt("audit item details", e)
        }

        #[async_trait]
        impl AuditStore for $store {
            async fn append_audit_item(&self, item: &AuditItem) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO audit_items (id, time, operator_id, operator_key, kind, document)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(item.id.to_string())
                .bind(to_millis(item.time))
                .bind(item.actor.operator_id.map(|id| id.to_string()))
                .bind(item.actor.name.to_lowercase())
                .bind(item.kind.name())
                .bind(serde_json::to_string(item).map_err(json_err)?)
                .execute(&self.write)
                .await
                .map_err(crate::db_error("append_audit_item"))?;
                Ok(())
            }

            async fn list_audit_items(
                &self,
                filter: &AuditFilter,
                offset: u64,
                limit: u64,
            ) -> StoreResult<Paged<AuditItem>> {
                let (clause, values) = filter_clause(filter);
                let count_sql = format!("SELECT COUNT(*) FROM audit_items{clause}");
                let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
                for v in &values {
                    count = match v {
                        Bound::Text(t) => count.bind(t.clone()),
                        Bound::Int(i) => count.bind(*i),
                    };
                }
                let total = count
                    .fetch_one(&self.read)
                    .await
                    .map_err(crate::db_error("list_audit_items"))?;
                let n = values.len();
                let page_sql = format!(
                    "SELECT document FROM audit_items{clause}
                     ORDER BY time DESC, seq DESC LIMIT ${} OFFSET ${}",
                    n + 1,
                    n + 2
                );
                let mut page = sqlx::query_scalar::<_, String>(&page_sql);
                for v in &values {
                    page = match v {
                        Bound::Text(t) => page.bind(t.clone()),
                        Bound::Int(i) => page.bind(*i),
                    };
                }
                let docs = page
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .bind(i64::try_from(offset).unwrap_or(i64::MAX))
                    .fetch_all(&self.read)
                    .await
                    .map_err(crate::db_error("list_audit_items"))?;
                Ok(Paged {
                    items: docs
                        .iter()
                        .map(|d| serde_json::from_str(d).map_err(json_err))
                        .collect::<StoreResult<_>>()?,
                    total: total.max(0) as u64,
                })
            }

            async fn purge_audit_items(&self, before: DateTime<Utc>) -> StoreResult<u64> {
                let done = sqlx::query("DELETE FROM audit_items WHERE time < $1")
                    .bind(to_millis(before))
                    .execute(&self.write)
                    .await
                    .map_err(crate::db_error("purge_audit_items"))?;
                Ok(done.rows_affected())
            }
        }
    };
}

pub(crate) use impl_audit_store;

#[cfg(test)]
mod tests {
    use m365backup_core::audit::{AuditFilter, AuditKind};

    use super::filter_clause;

    #[test]
    fn clauses_number_their_placeholders() {
        assert_eq!(filter_clause(&AuditFilter::default()).0, "");
        let (clause, values) = filter_clause(&AuditFilter {
            operator_name: Some("Admin".into()),
            from: Some(chrono::DateTime::UNIX_EPOCH),
            kinds: vec![AuditKind::SignIn, AuditKind::JobStarted],
            ..Default::default()
        });
        assert_eq!(
            clause,
            " WHERE operator_key = $1 AND time >= $2 AND kind IN ($3, $4)"
        );
        assert_eq!(values.len(), 4);
    }
}
