//! The `perfagent` binary: see [`perfagent::cli`].

fn main() -> std::process::ExitCode {
    perfagent::cli::main()
}
