//! `config-reference`: prints docs/configuration.md (scripts/gen-cli-reference.sh writes
//! or checks it).

fn main() {
    print!("{}", orderflow_repo_tests::configuration_reference());
}
