//! The `sessiond` binary: parse the command line, load and validate the configuration,
//! start logging, run the command.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use sessiond::cli::{self, Cli, CliError};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    fail(&CliError::Usage("a subcommand is required; see `sessiond help`".into()))
                }
                _ => fail(&CliError::Usage(cli::one_line_usage_error(&e.render().to_string()))),
            };
        }
    };
    let (config, warnings) = match cli.load_config() {
        Ok(loaded) => loaded,
        Err(e) => return fail(&e),
    };
    sessiond::logging::init(config.server.log_format, cli.default_log_level());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            return fail(&CliError::Failure(format!("cannot start the async runtime: {e}")));
        }
    };
    match runtime.block_on(cli::run(cli, config, warnings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &CliError) -> ExitCode {
    let msg = e.to_string();
    let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
    eprintln!("sessiond: {msg}");
    ExitCode::from(e.exit_code())
}
