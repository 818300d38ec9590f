//! `m365backup`: the server and its administration commands.

use clap::{Parser, Subcommand};
use m365backup::admin::AdminCommand;
use m365backup::config::{ServeArgs, Settings, StateArgs};

#[derive(Parser, Debug)]
#[command(
    name = "m365backup",
    version,
    about = "Self-hosted backup server for Microsoft 365 SharePoint Online and OneDrive"
)]
struct Cli {
    #[command(flatten)]
    state: StateArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the API server.
    Serve(Box<ServeArgs>),
    /// Manage operator accounts.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Download every OneDrive and SharePoint file of an organization through its backup
    /// accounts, hashing instead of storing: measures what a backup would achieve.
    Probe(m365backup::probe::ProbeArgs),
    /// Manage backup repositories: list, create, check, prune, rebuild-catalog, recovery-password.
    #[command(subcommand)]
    Repository(m365backup::repository_cli::RepositoryCommand),
    /// Backup jobs: list, start (and follow with --wait).
    #[command(subcommand)]
    Job(m365backup::job_cli::JobCommand),
    /// Job sessions: show one, with its log.
    #[command(subcommand)]
    Session(m365backup::job_cli::SessionCommand),
    /// Save backed-up OneDrives, sites, folders or documents, at a point in time, to a ZIP file.
    Export(Box<m365backup::restore_cli::ExportArgs>),
    /// Restore backed-up OneDrives, sites, folders or documents, at a point in time, to
    /// Microsoft 365: where they were, or copied into another OneDrive or library.
    Restore(Box<m365backup::restore_cli::RestoreArgs>),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    m365backup_repo::memory::tune_allocator();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(serve) => {
            let settings = Settings::resolve(&cli.state, &serve)?;
            m365backup::logging::init(settings.log_format);
            let stop = m365backup::server::shutdown_signal()?;
            let server = m365backup::server::start(&settings).await?;
            server.run_until(stop).await
        }
        Command::Probe(args) => {
            let settings = Settings::resolve(&cli.state, &ServeArgs::default())?;
            m365backup::logging::init(settings.log_format);
            m365backup::probe::run(args, &settings).await
        }
        Command::Repository(command) => {
            let settings = Settings::resolve(&cli.state, &ServeArgs::default())?;
            m365backup::logging::init(settings.log_format);
            m365backup::repository_cli::run(command, &settings).await
        }
        Command::Job(command) => {
            let settings = Settings::resolve(&cli.state, &ServeArgs::default())?;
            m365backup::logging::init(settings.log_format);
            m365backup::job_cli::run_job(command, &settings).await
        }
        Command::Session(command) => {
            let settings = Settings::resolve(&cli.state, &ServeArgs::default())?;
            m365backup::logging::init(settings.log_format);
            m365backup::job_cli::run_session(command, &settings).await
        }
        Command::Export(args) => {
            let settings = Settings::resolve(&cli.state, &ServeArgs::default())?;
            m365backup::logging::init(settings.log_format);
            m365backup::restore_cli::run_export(*args, &settings).await
        }
        Command::Restore(args) => {
            let settings = Settings::resolve(&cli.state, &ServeArgs::default())?;
            m365backup::logging::init(settings.log_format);
            m365backup::restore_cli::run_restore(*args, &settings).await
        }
        Command::Admin(command) => {
            let settings = Settings::resolve(&cli.state, &ServeArgs::default())?;
            m365backup::logging::init(settings.log_format);
            m365backup::admin::run(command, &settings).await
        }
    }
}
