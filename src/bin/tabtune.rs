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
    use std::path::{Path, PathBuf};

    use tabtune::data::image::Preprocess;
    use tabtune::data::{FeatureSet, ImageFolder, features::SyntheticSpec};
    use tabtune::device::{self, DeviceChoice};
    use tabtune::models::{MobileNetV2, mobilenet_v2};
    use tabtune::train::{self, Control, Progress, Recipe};
    use tabtune::weights::{WeightSource, load_into};

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
        /// Fine-tune a pre-trained image model on a folder of class subfolders (phase 1: the
        /// new head on cached features of the frozen backbone).
        Finetune {
            /// Weights (.safetensors or .pth) or a folder holding model.safetensors / *.pth.
            #[arg(long)]
            model: PathBuf,
            /// Folder of class subfolders of images.
            #[arg(long)]
            data: PathBuf,
            /// auto, gpu or cpu.
            #[arg(long, default_value = "auto")]
            device: DeviceChoice,
            /// Recipe as a JSON file; flags below override it.
            #[arg(long)]
            recipe: Option<PathBuf>,
            /// Head epochs.
            #[arg(long)]
            epochs: Option<usize>,
            /// Fraction of each class held out for validation.
            #[arg(long)]
            val_fraction: Option<f64>,
            /// Images per batch through the backbone.
            #[arg(long, default_value_t = 32)]
            feature_batch: usize,
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
            Command::Finetune {
                model,
                data,
                device,
                recipe,
                epochs,
                val_fraction,
                feature_batch,
            } => {
                let mut recipe = load_recipe(recipe.as_deref(), epochs)?;
                if let Some(v) = val_fraction {
                    recipe.val_fraction = v;
                }
                recipe.validate()?;
                finetune(&model, &data, device, &recipe, feature_batch)?;
            }
            Command::HeadDemo {
                device,
                recipe,
                epochs,
            } => {
                let recipe = load_recipe(recipe.as_deref(), epochs)?;
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

    type AnyError = Box<dyn std::error::Error>;

    fn load_recipe(path: Option<&Path>, epochs: Option<usize>) -> Result<Recipe, AnyError> {
        let mut recipe = match path {
            Some(path) => Recipe::from_json(
                &std::fs::read_to_string(path)
                    .map_err(|err| format!("cannot read recipe {}: {err}", path.display()))?,
            )
            .map_err(|err| format!("{}: {err}", path.display()))?,
            None => Recipe::default(),
        };
        if let Some(epochs) = epochs {
            recipe.head.epochs = epochs;
        }
        Ok(recipe)
    }

    /// A weights file, or the weights inside a model folder (safetensors preferred).
    fn weights_file(model: &Path) -> Result<PathBuf, AnyError> {
        if !model.is_dir() {
            return Ok(model.to_path_buf());
        }
        let safetensors = model.join("model.safetensors");
        if safetensors.exists() {
            return Ok(safetensors);
        }
        let mut pths: Vec<PathBuf> = std::fs::read_dir(model)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "pth" || e == "pt"))
            .collect();
        pths.sort();
        pths.into_iter().next().ok_or_else(|| {
            format!(
                "{}: no model.safetensors or .pth file in this folder",
                model.display()
            )
            .into()
        })
    }

    fn finetune(
        model: &Path,
        data: &Path,
        device: DeviceChoice,
        recipe: &Recipe,
        feature_batch: usize,
    ) -> Result<(), AnyError> {
        let selected = block_on(device::select(device))?;
        println!("device: {}", selected.info.summary());
        let weights = weights_file(model)?;
        let mut backbone = MobileNetV2::new(1000, &selected.device);
        let loaded = load_into(
            &mut backbone,
            &WeightSource::Path(weights.clone()),
            &mobilenet_v2::weight_map(),
            &["num_batches_tracked"],
        )?;
        println!(
            "model: MobileNetV2 from {} ({:?}, {} tensors)",
            weights.display(),
            loaded.format,
            loaded.applied
        );
        let folder = ImageFolder::open(data)?;
        println!(
            "data: {} images in {} classes",
            folder.items.len(),
            folder.classes.len()
        );
        for (class, count) in folder.classes.iter().zip(folder.counts()) {
            println!("  {class}: {count}");
        }
        for (file, why) in &folder.skipped {
            println!("  skipped {}: {why}", file.display());
        }
        let pre = Preprocess::default();
        let mut load = |i: usize| {
            let (file, label) = &folder.items[i];
            let name = file.display().to_string();
            let pixels = std::fs::read(file)
                .map_err(|err| tabtune::Error::Data(format!("{name}: {err}")))
                .and_then(|bytes| pre.file_bytes(&bytes, &name));
            (name, *label, pixels)
        };
        let mut print = |event: &Progress| {
            match event {
                Progress::Features {
                    done,
                    total,
                    throughput,
                    eta_s,
                } => println!(
                    "features: {done}/{total} images, {throughput:.1} images/s, {eta_s:.0} s left"
                ),
                Progress::Epoch {
                    epoch,
                    train_loss,
                    val_accuracy,
                    ..
                } => {
                    let acc = val_accuracy.map_or("-".into(), |a| format!("{:.1}%", a * 100.0));
                    println!("head epoch {epoch}: loss {train_loss:.4}, val accuracy {acc}");
                }
                Progress::Step { .. } => {}
            }
            Control::Continue
        };
        let extracted = block_on(train::features::extract(
            &backbone,
            folder.classes.clone(),
            folder.items.len(),
            pre.crop as usize,
            feature_batch,
            &selected.device,
            &mut load,
            &mut print,
        ))?;
        for (_, why) in &extracted.skipped {
            println!("  skipped {why}");
        }
        println!(
            "features: {} images in {:.1} s ({:.1} images/s)",
            extracted.set.len(),
            extracted.seconds,
            extracted.set.len() as f64 / extracted.seconds
        );
        let (_, report) = block_on(train::train_head(
            &extracted.set,
            recipe,
            &selected.device,
            &mut print,
        ))?;
        println!(
            "phase 1 (head only): {} train / {} val images, {} steps in {:.1} s, val accuracy {:.1}%",
            report.train_rows,
            report.val_rows,
            report.losses.len(),
            report.seconds,
            report.val_accuracy.last().copied().unwrap_or(0.0) * 100.0
        );
        Ok(())
    }
}
