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
    use std::io::{IsTerminal, Write};
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;

    use burn::prelude::Device;
    use clap::{Parser, Subcommand};
    use futures_lite::future::block_on;

    use tabtune::data::image::decode;
    use tabtune::data::{
        FeatureSet, FolderSource, ImageFolder, ImageSource, features::SyntheticSpec,
    };
    use tabtune::device::{self, DeviceChoice};
    use tabtune::models::{ImageModel, ModelConfig};
    use tabtune::train::recipe::Unfreeze;
    use tabtune::train::{self, Control, Metrics, Progress, Recipe};
    use tabtune::weights::WeightSource;

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

    #[derive(clap::Args)]
    struct ModelArgs {
        /// Weights (.safetensors or .pth) or a folder holding model.safetensors / *.pth (and
        /// optionally config.json with the labels).
        #[arg(long)]
        model: PathBuf,
        /// auto, gpu or cpu.
        #[arg(long, default_value = "auto")]
        device: DeviceChoice,
    }

    #[derive(Subcommand)]
    enum Command {
        /// Say which compute device would be used.
        Devices {
            /// auto, gpu or cpu.
            #[arg(long, default_value = "auto")]
            device: DeviceChoice,
        },
        /// Fine-tune a pre-trained image model on a folder of class subfolders: phase 1 trains a
        /// new head on the frozen backbone, phase 2 (unless --no-finetune) the whole model.
        Finetune {
            #[command(flatten)]
            model: ModelArgs,
            /// Folder of class subfolders of images, or a CSV/TSV list of `file,label` lines.
            #[arg(long)]
            data: PathBuf,
            /// Validation folder (or list) with the same classes (else a stratified split).
            #[arg(long)]
            val: Option<PathBuf>,
            /// Where to write model.safetensors, config.json and report.json.
            #[arg(long)]
            out: PathBuf,
            /// Recipe as a JSON file; flags below override it.
            #[arg(long)]
            recipe: Option<PathBuf>,
            /// Phase 1 (head) epochs.
            #[arg(long)]
            epochs: Option<usize>,
            /// Phase 2 (whole model) epochs.
            #[arg(long)]
            finetune_epochs: Option<usize>,
            /// Stop after phase 1.
            #[arg(long)]
            no_finetune: bool,
            /// Phase 2 trains "all" blocks or only the last N.
            #[arg(long)]
            unfreeze: Option<String>,
            /// Augment training images (random resized crop, flip) in both phases.
            #[arg(long)]
            augment: bool,
            /// Fraction of each class held out for validation.
            #[arg(long)]
            val_fraction: Option<f64>,
            /// Seed of the split, order, augmentation and head.
            #[arg(long)]
            seed: Option<u64>,
            /// Images per batch through the backbone when caching features.
            #[arg(long, default_value_t = 32)]
            feature_batch: usize,
        },
        /// Evaluate a model (e.g. a fine-tuned one from `finetune --out`) on a folder of class
        /// subfolders named as its labels.
        Eval {
            #[command(flatten)]
            model: ModelArgs,
            /// Folder of class subfolders of images, or a CSV/TSV list of `file,label` lines.
            #[arg(long)]
            data: PathBuf,
            /// Images per batch.
            #[arg(long, default_value_t = 32)]
            batch: usize,
        },
        /// Classify image files with a model, printing the top classes.
        Predict {
            #[command(flatten)]
            model: ModelArgs,
            /// Classes to print per image.
            #[arg(long, default_value_t = 3)]
            top: usize,
            /// Image files.
            #[arg(required = true)]
            files: Vec<PathBuf>,
        },
        /// Write a model (e.g. a .pth) as model.safetensors + config.json under its own key
        /// names, the form the browser loads.
        Export {
            #[command(flatten)]
            model: ModelArgs,
            /// Output folder.
            #[arg(long)]
            out: PathBuf,
        },
        /// Train a linear head on synthetic feature clusters: the smallest end-to-end check.
        HeadDemo {
            /// auto, gpu or cpu.
            #[arg(long, default_value = "auto")]
            device: DeviceChoice,
            /// Recipe as a JSON file; flags below override it.
            #[arg(long)]
            recipe: Option<PathBuf>,
            /// Head epochs.
            #[arg(long)]
            epochs: Option<usize>,
        },
    }

    type AnyError = Box<dyn std::error::Error>;

    pub fn main() -> ExitCode {
        match run(Cli::parse()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("tabtune: {err}");
                ExitCode::FAILURE
            }
        }
    }

    fn run(cli: Cli) -> Result<(), AnyError> {
        match cli.command {
            Command::Devices { device } => {
                let selected = block_on(device::select(device))?;
                println!("{}", selected.info.summary());
            }
            Command::Finetune {
                model,
                data,
                val,
                out,
                recipe,
                epochs,
                finetune_epochs,
                no_finetune,
                unfreeze,
                augment,
                val_fraction,
                seed,
                feature_batch,
            } => {
                let mut recipe = load_recipe(recipe.as_deref(), epochs)?;
                if let Some(v) = val_fraction {
                    recipe.val_fraction = v;
                }
                if let Some(s) = seed {
                    recipe.seed = s;
                }
                if no_finetune {
                    recipe.finetune = None;
                } else if finetune_epochs.is_some() || unfreeze.is_some() {
                    let phase = recipe.finetune.get_or_insert_with(Default::default);
                    if let Some(e) = finetune_epochs {
                        phase.epochs = e;
                    }
                    if let Some(u) = unfreeze {
                        phase.unfreeze = match u.as_str() {
                            "all" => Unfreeze::All,
                            n => Unfreeze::Last(n.parse().map_err(|_| {
                                format!(
                                    "--unfreeze: expected \"all\" or a number of blocks, got {n:?}"
                                )
                            })?),
                        };
                    }
                }
                if augment {
                    recipe.head.augment = true;
                    if let Some(f) = recipe.finetune.as_mut() {
                        f.augment = true;
                    }
                }
                recipe.validate()?;
                finetune(&model, &data, val.as_deref(), &out, &recipe, feature_batch)?;
            }
            Command::Eval { model, data, batch } => eval(&model, &data, batch)?,
            Command::Predict { model, top, files } => predict(&model, top, &files)?,
            Command::Export { model, out } => {
                let (device, model, labels) = open_model(&model)?;
                let _ = device;
                write_model(&out, &model, &labels, None)?;
                println!("wrote {}", out.display());
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
                let mut bar = Bar::new();
                let (_, report) = block_on(train::train_head(
                    &set,
                    &recipe,
                    &selected.device,
                    &mut |e| bar.show(e),
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

    /// The device, the model and its labels (config.json's, else "0", "1", ...).
    fn open_model(args: &ModelArgs) -> Result<(Device, ImageModel, Vec<String>), AnyError> {
        let selected = block_on(device::select(args.device))?;
        println!("device: {}", selected.info.summary());
        let weights = weights_file(&args.model)?;
        let (model, loaded) =
            ImageModel::load(&WeightSource::Path(weights.clone()), &selected.device)?;
        println!(
            "model: {} from {} ({:?}, {} tensors)",
            model.arch().name(),
            weights.display(),
            loaded.format,
            loaded.applied
        );
        let config_file = weights.with_file_name("config.json");
        // A config.json with labels (one tabtune or HF wrote) names the classes; one without
        // (the pre-trained model's own) leaves them numbered.
        let numbered = || (0..model.classes()).map(|i| i.to_string()).collect();
        let labels = match std::fs::read_to_string(&config_file) {
            Ok(text) if text.contains("\"id2label\"") => {
                let config = ModelConfig::from_json(&text, &config_file.display().to_string())?;
                if config.num_labels != model.classes() {
                    return Err(format!(
                        "{}: num_labels {} but the weights' classifier has {} classes",
                        config_file.display(),
                        config.num_labels,
                        model.classes()
                    )
                    .into());
                }
                config.labels()
            }
            _ => numbered(),
        };
        Ok((selected.device, model, labels))
    }

    fn write_model(
        out: &Path,
        model: &ImageModel,
        labels: &[String],
        report: Option<String>,
    ) -> Result<(), AnyError> {
        std::fs::create_dir_all(out)
            .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
        let config = ModelConfig::new(model.arch(), labels);
        let bytes = model.to_safetensors(&[("format", "pt".into())])?;
        // Written beside, then renamed: an interrupted export never leaves a half file.
        let write = |name: &str, data: &[u8]| -> Result<(), AnyError> {
            let tmp = out.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, data)
                .and_then(|_| std::fs::rename(&tmp, out.join(name)))
                .map_err(|e| format!("cannot write {}: {e}", out.join(name).display()).into())
        };
        write("model.safetensors", &bytes)?;
        write("config.json", config.to_json().as_bytes())?;
        if let Some(report) = report {
            write("report.json", report.as_bytes())?;
        }
        Ok(())
    }

    fn open_folder(data: &Path) -> Result<ImageFolder, AnyError> {
        let folder = ImageFolder::open_any(data)?;
        println!(
            "data: {} images in {} classes from {}",
            folder.items.len(),
            folder.classes.len(),
            data.display()
        );
        for (class, count) in folder.classes.iter().zip(folder.counts()) {
            println!("  {class}: {count}");
        }
        for (file, why) in &folder.skipped {
            println!("  skipped {}: {why}", file.display());
        }
        Ok(folder)
    }

    fn finetune(
        model_args: &ModelArgs,
        data: &Path,
        val: Option<&Path>,
        out: &Path,
        recipe: &Recipe,
        feature_batch: usize,
    ) -> Result<(), AnyError> {
        let (device, model, _) = open_model(model_args)?;
        let train_folder = open_folder(data)?;
        let val_folder = val.map(open_folder).transpose()?;
        let (source, split) = FolderSource::new(&train_folder, val_folder.as_ref())?;
        let mut bar = Bar::new();
        let (model, report) = block_on(train::finetune_images(
            model,
            &source,
            split,
            recipe,
            feature_batch,
            &device,
            &mut |e| bar.show(e),
        ))?;
        bar.clear();
        for (name, why) in &report.skipped {
            println!("skipped {name}: {why}");
        }
        if let Some((n, s)) = report.features {
            println!(
                "features: {n} images in {s:.1} s ({:.1} images/s)",
                n as f64 / s
            );
        }
        for phase in &report.phases {
            println!(
                "{}: {} train / {} val images, {} steps in {:.2} s ({:.1} images/s), kept epoch {}, val accuracy {}{}",
                phase.phase,
                phase.train_rows,
                phase.val_rows,
                phase.losses.len(),
                phase.seconds,
                phase.throughput,
                phase.best_epoch,
                phase
                    .best_val_accuracy()
                    .map_or("-".into(), |a| format!("{:.2}%", a * 100.0)),
                if phase.stopped_early {
                    " (stopped early)"
                } else {
                    ""
                }
            );
        }
        if let Some(m) = &report.metrics {
            print!("{}", m.table());
        }
        let json = serde_json::to_string_pretty(&serde_json::json!({
            "recipe": recipe,
            "report": report,
        }))?;
        write_model(out, &model, &report.classes, Some(json))?;
        println!("wrote {}", out.display());
        Ok(())
    }

    fn eval(model_args: &ModelArgs, data: &Path, batch: usize) -> Result<(), AnyError> {
        let (device, model, labels) = open_model(model_args)?;
        let folder = open_folder(data)?;
        if folder.classes != labels {
            return Err(format!(
                "{}: class folders {:?} differ from the model's labels {:?}",
                data.display(),
                folder.classes,
                labels
            )
            .into());
        }
        let (source, _) = FolderSource::new(&folder, None)?;
        let rows: Vec<usize> = (0..source.len()).collect();
        let mut skipped = Vec::new();
        let pre = model.arch().preprocess();
        let (truth, predicted) = block_on(train::images::predict(
            &model,
            &source,
            &rows,
            &pre,
            batch,
            &device,
            &mut skipped,
        ))?;
        for (name, why) in &skipped {
            println!("skipped {name}: {why}");
        }
        print!("{}", Metrics::new(&labels, &truth, &predicted).table());
        Ok(())
    }

    fn predict(model_args: &ModelArgs, top: usize, files: &[PathBuf]) -> Result<(), AnyError> {
        use burn::prelude::*;
        use burn::tensor::TensorData;
        let (device, model, labels) = open_model(model_args)?;
        let pre = model.arch().preprocess();
        let side = pre.crop as usize;
        let mut failed = 0;
        for file in files {
            let name = file.display().to_string();
            let image = std::fs::read(file)
                .map_err(|e| tabtune::Error::Data(format!("{name}: {e}")))
                .and_then(|bytes| decode(&bytes, &name));
            let image = match image {
                Ok(image) => image,
                Err(err) => {
                    println!("{name}: skipped: {err}");
                    failed += 1;
                    continue;
                }
            };
            let x = Tensor::<4>::from_data(
                TensorData::new(pre.rgb(image, None), [1, 3, side, side]),
                &device,
            );
            let probs: Vec<f32> = burn::tensor::activation::softmax(model.forward(x), 1)
                .into_data()
                .iter::<f32>()
                .collect();
            let mut order: Vec<usize> = (0..probs.len()).collect();
            order.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]));
            let best: Vec<String> = order
                .iter()
                .take(top.max(1))
                .map(|&c| format!("{} {:.1}%", labels[c], probs[c] * 100.0))
                .collect();
            println!("{name}: {}", best.join(", "));
        }
        if failed == files.len() {
            return Err(format!("none of the {failed} files could be read").into());
        }
        Ok(())
    }

    /// Progress: a redrawn bar with ETA on a terminal, plain lines (epochs, every 10% of
    /// features) when not.
    struct Bar {
        tty: bool,
        last_features: usize,
    }

    impl Bar {
        fn new() -> Self {
            Self {
                tty: std::io::stderr().is_terminal(),
                last_features: 0,
            }
        }

        fn clear(&mut self) {
            if self.tty {
                eprint!("\r\x1b[2K");
            }
        }

        fn line(&mut self, label: &str, done: usize, total: usize, detail: &str) {
            let width = 30;
            let filled = (done * width) / total.max(1);
            eprint!(
                "\r\x1b[2K{label} [{}{}] {done}/{total} {detail}",
                "#".repeat(filled),
                "-".repeat(width - filled)
            );
            let _ = std::io::stderr().flush();
        }

        fn show(&mut self, event: &Progress) -> Control {
            match event {
                Progress::Features {
                    done,
                    total,
                    throughput,
                    eta_s,
                } => {
                    let detail = format!("{throughput:.1} images/s, ETA {}", eta(*eta_s));
                    if self.tty {
                        self.line("features", *done, *total, &detail);
                    } else if done * 10 / total.max(&1) > self.last_features * 10 / total.max(&1)
                        || done == total
                    {
                        println!("features {done}/{total}: {detail}");
                    }
                    self.last_features = *done;
                }
                Progress::Step {
                    phase,
                    epoch,
                    step,
                    total_steps,
                    loss,
                    throughput,
                    eta_s,
                } if self.tty => {
                    let detail = format!(
                        "epoch {epoch}, loss {loss:.4}, {throughput:.1}/s, ETA {}",
                        eta(*eta_s)
                    );
                    self.line(phase, *step, *total_steps, &detail);
                }
                Progress::Step { .. } => {}
                Progress::Epoch {
                    phase,
                    epoch,
                    train_loss,
                    val_accuracy,
                } => {
                    self.clear();
                    let acc = val_accuracy.map_or("-".into(), |a| format!("{:.2}%", a * 100.0));
                    println!("{phase} epoch {epoch}: loss {train_loss:.4}, val accuracy {acc}");
                }
            }
            Control::Continue
        }
    }

    fn eta(seconds: f64) -> String {
        let s = seconds.round() as u64;
        if s >= 3600 {
            format!("{}h{:02}m", s / 3600, s % 3600 / 60)
        } else {
            format!("{}m{:02}s", s / 60, s % 60)
        }
    }
}
