//! The tabtune command line: the same core as the browser, natively.

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::main()
}

// The binary is native-only; wasm32 builds of the package (for the browser tests) get a stub.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::process::ExitCode;

    use clap::{Parser, Subcommand};
    use futures_lite::future::block_on;
    use tabtune::data::{FeatureSet, features::SyntheticSpec};
    use tabtune::device::{self, DeviceChoice};
    use tabtune::train::{self, Control, Progress, Recipe};

    #[derive(Parser)]
    #[command(
        name = "tabtune",
        version,
        about = "Fine-tune pre-trained models on your own device"
    )]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Subcommand)]
    enum Command {
        /// Say which compute device would be used.
        Devices {
            /// auto, gpu or cpu.
            #[arg(long, default_value = "auto")]
            device: DeviceChoice,
        },
        /// Train a linear head on synthetic feature clusters: the smallest end-to-end check.
        HeadDemo {
            /// auto, gpu or cpu.
            #[arg(long, default_value = "auto")]
            device: DeviceChoice,
            /// Recipe as a JSON file; flags below override it.
            #[arg(long)]
            recipe: Option<std::path::PathBuf>,
            /// Head epochs.
            #[arg(long)]
            epochs: Option<usize>,
        },
    }

    pub fn main() -> ExitCode {
        match run(Cli::parse()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("tabtune: {err}");
                ExitCode::FAILURE
            }
        }
    }

    fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
        match cli.command {
            Command::Devices { device } => {
                let selected = block_on(device::select(device))?;
                println!("{}", selected.info.summary());
            }
            Command::HeadDemo {
                device,
                recipe,
                epochs,
            } => {
                let mut recipe = match recipe {
                    Some(path) => {
                        Recipe::from_json(&std::fs::read_to_string(&path).map_err(|err| {
                            format!("cannot read recipe {}: {err}", path.display())
                        })?)
                        .map_err(|err| format!("{}: {err}", path.display()))?
                    }
                    None => Recipe::default(),
                };
                if let Some(epochs) = epochs {
                    recipe.head.epochs = epochs;
                }
                let selected = block_on(device::select(device))?;
                println!("device: {}", selected.info.summary());
                let set = FeatureSet::synthetic(&SyntheticSpec::default())?;
                let mut print = |event: &Progress| {
                    if let Progress::Epoch {
                        epoch,
                        train_loss,
                        val_accuracy,
                        ..
                    } = event
                    {
                        let acc = val_accuracy.map_or("-".into(), |a| format!("{:.1}%", a * 100.0));
                        println!("epoch {epoch}: loss {train_loss:.4}, val accuracy {acc}");
                    }
                    Control::Continue
                };
                let (_, report) = block_on(train::train_head(
                    &set,
                    &recipe,
                    &selected.device,
                    &mut print,
                ))?;
                let (first, last) = report.loss_drop(3);
                println!(
                    "trained {} steps in {:.3}s: loss {first:.4} -> {last:.4}",
                    report.losses.len(),
                    report.seconds
                );
            }
        }
        Ok(())
    }
}
