//! `m365backup admin add|passwd|list|remove`: operator accounts, managed on the server machine.

use std::io::{BufRead, IsTerminal};

use anyhow::Context;
use clap::Subcommand;
use m365backup_core::audit::AuditKind;
use m365backup_core::auth::OperatorService;
use m365backup_core::Secret;

use crate::config::Settings;

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Add an operator; the password is read from the terminal (twice) or from standard input.
    Add { name: String },
    /// Change an operator's password; all its tokens stop working.
    Passwd { name: String },
    /// List operators.
    List,
    /// Remove an operator (never the last one); its tokens stop working.
    Remove { name: String },
}

pub async fn run(command: AdminCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = crate::server::open_store(settings).await?;
    let operators = OperatorService::new(store.clone());
    let audit = |kind, command: &'static str, resource: String| {
        crate::cli_audit::record(store.clone(), kind, command, resource, String::new())
    };
    match command {
        AdminCommand::Add { name } => {
            let password = read_new_password()?;
            let op = operators.add(&name, &password).await?;
            audit(
                AuditKind::OperatorAdded,
                "admin add",
                format!("operator {} ({})", op.name, op.id),
            )
            .await?;
            println!("Added operator '{}'.", op.name);
        }
        AdminCommand::Passwd { name } => {
            let password = read_new_password()?;
            operators.set_password(&name, &password).await?;
            audit(
                AuditKind::OperatorPasswordChanged,
                "admin passwd",
                format!("operator {name}"),
            )
            .await?;
            println!("Password of '{name}' changed; its existing tokens are revoked.");
        }
        AdminCommand::List => {
            for op in operators.list().await? {
                println!("{}\t{}\t{}", op.name, op.id, op.created_at.to_rfc3339());
            }
        }
        AdminCommand::Remove { name } => {
            operators.remove(&name).await?;
            audit(
                AuditKind::OperatorRemoved,
                "admin remove",
                format!("operator {name}"),
            )
            .await?;
            println!("Removed operator '{name}'.");
        }
    }
    Ok(())
}

/// From a terminal: prompt twice, without echo. Otherwise: the first line of standard input.
fn read_new_password() -> anyhow::Result<Secret> {
    if std::io::stdin().is_terminal() {
        let first = Secret::new(rpassword::prompt_password("New password: ")?);
        let second = Secret::new(rpassword::prompt_password("Repeat password: ")?);
        anyhow::ensure!(first == second, "the passwords do not match");
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        Ok(Secret::new(line.trim_end_matches(['\r', '\n'])))
    }
}
