//! The OpenAPI 3 document. Paths are collected from the handlers' `#[utoipa::path]` attributes
//! by the router itself (see [`crate::build`]), so the document cannot drift from the routes.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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
