//! `config-reference`: prints docs/configuration.md, or with `--commands` the commands
//! it has a section for, one a line (scripts/gen-cli-reference.sh writes or checks the
//! page, and renders each listed command's `--help` into docs/cli-reference.md, so
//! neither reference can miss a command).

use clap::Parser;

/// Prints the configuration reference generated from the binaries' clap command models.
#[derive(Debug, Parser)]
#[command(name = "config-reference")]
struct Args {
    /// Print the commands (binary first, e.g. `orderflow topics apply`), one a line,
    /// instead of the page.
    #[arg(long)]
    commands: bool,
}

fn main() {
    let args = Args::parse();
    if args.commands {
        for command in orderflow_repo_tests::commands() {
            println!("{}", command.name);
        }
    } else {
        print!("{}", orderflow_repo_tests::configuration_reference());
    }
}
