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
        Columns, FeatureSet, FolderSource, ImageFolder, ImageSource, TextSet,
        features::SyntheticSpec,
    };
    use tabtune::device::{self, DeviceChoice};
    use tabtune::models::{ImageModel, ModelConfig, Pooling, TextModel, TextOptions};
    use tabtune::train::recipe::Unfreeze;
    use tabtune::train::{self, Control, Metrics, Modality, Progress, Recipe};
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
        /// optionally config.json with the labels). A folder with tokenizer.json and a BERT
        /// config.json is a text model.
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
        /// Fine-tune a pre-trained model: images from a folder of class subfolders, text from a
        /// CSV/TSV/JSONL file or a folder of class subfolders of .txt files. Phase 1 trains a new
        /// head on the frozen backbone, phase 2 (unless --no-finetune) the whole model.
        Finetune {
            #[command(flatten)]
            model: ModelArgs,
            /// Images: folder of class subfolders, or a CSV/TSV list of `file,label` lines.
            /// Text: a CSV/TSV/JSONL file, or a folder of class subfolders of .txt files.
            #[arg(long)]
            data: PathBuf,
            #[command(flatten)]
            text: TextArgs,
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
        /// Evaluate a model (e.g. a fine-tuned one from `finetune --out`) on data labelled with
        /// its labels.
        Eval {
            #[command(flatten)]
            model: ModelArgs,
            /// As for finetune.
            #[arg(long)]
            data: PathBuf,
            #[command(flatten)]
            text: TextArgs,
            /// Images per batch.
            #[arg(long, default_value_t = 32)]
            batch: usize,
        },
        /// Classify image files (or, with a text model, texts) printing the top classes.
        Predict {
            #[command(flatten)]
            model: ModelArgs,
            /// Classes to print per input.
            #[arg(long, default_value_t = 3)]
            top: usize,
            /// Image files, or the texts themselves for a text model.
            #[arg(required = true)]
            inputs: Vec<String>,
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
        /// Speed workloads for `make bench` (bench/run.mjs): JSON commands on stdin, one per
        /// line — `{"op":"setup","workload":"image_step","batch":32}` builds a workload and runs
        /// a warm-up, `{"op":"rep"}` times one repetition, `{"op":"info"}`, `{"op":"quit"}` —
        /// each answered by one JSON line on stdout.
        Bench {
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
            recipe: Option<PathBuf>,
            /// Head epochs.
            #[arg(long)]
            epochs: Option<usize>,
        },
    }

    /// Text data and input options (text models only).
    #[derive(clap::Args)]
    struct TextArgs {
        /// Column (CSV/TSV) or key (JSONL) of the text; detected from the header if left out.
        #[arg(long)]
        text_column: Option<String>,
        /// Column or key of the label; detected from the header if left out.
        #[arg(long)]
        label_column: Option<String>,
        /// Tokens per input; longer inputs are cut (and counted in the report).
        #[arg(long)]
        max_length: Option<usize>,
        /// Sentence vector: mean, cls or pooler.
        #[arg(long)]
        pooling: Option<String>,
        /// Use only the first N texts of each class (a quick run on a large set).
        #[arg(long)]
        per_class: Option<usize>,
    }

    impl TextArgs {
        fn columns(&self) -> Columns {
            Columns {
                text: self.text_column.clone(),
                label: self.label_column.clone(),
                per_class: self.per_class,
            }
        }

        fn apply(&self, options: &mut TextOptions) -> Result<(), AnyError> {
            if let Some(n) = self.max_length {
                options.max_length = n;
            }
            if let Some(p) = &self.pooling {
                options.pooling = match p.as_str() {
                    "mean" => Pooling::Mean,
                    "cls" => Pooling::Cls,
                    "pooler" => Pooling::Pooler,
                    other => {
                        return Err(format!(
                            "--pooling: expected mean, cls or pooler, got {other:?}"
                        )
                        .into());
                    }
                };
            }
            Ok(())
        }
    }

    type AnyError = Box<dyn std::error::Error>;

    /// A model folder with a tokenizer is a text model.
    fn is_text_model(model: &Path) -> bool {
        model.is_dir() && model.join("tokenizer.json").exists()
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

    fn run(cli: Cli) -> Result<(), AnyError> {
        match cli.command {
            Command::Devices { device } => {
                let selected = block_on(device::select(device))?;
                println!("{}", selected.info.summary());
            }
            Command::Finetune {
                model,
                data,
                text,
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
                let modality = if is_text_model(&model.model) {
                    Modality::Text
                } else {
                    Modality::Image
                };
                let mut recipe = load_recipe(recipe.as_deref(), epochs, modality)?;
                text.apply(&mut recipe.text)?;
                if let Some(v) = val_fraction {
                    recipe.val_fraction = v;
                }
                if let Some(s) = seed {
                    recipe.seed = s;
                }
                if no_finetune {
                    recipe.finetune = None;
                } else if finetune_epochs.is_some() || unfreeze.is_some() {
                    let phase = recipe
                        .finetune
                        .get_or_insert_with(|| Recipe::defaults(modality).finetune.unwrap());
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
                if modality == Modality::Text {
                    finetune_text(
                        &model,
                        &data,
                        &text,
                        val.as_deref(),
                        &out,
                        &recipe,
                        feature_batch,
                    )?;
                } else {
                    finetune(&model, &data, val.as_deref(), &out, &recipe, feature_batch)?;
                }
            }
            Command::Eval {
                model,
                data,
                text,
                batch,
            } => {
                if is_text_model(&model.model) {
                    eval_text(&model, &data, &text, batch)?
                } else {
                    eval(&model, &data, batch)?
                }
            }
            Command::Predict { model, top, inputs } => {
                if is_text_model(&model.model) {
                    predict_text(&model, top, &inputs)?
                } else {
                    let files: Vec<PathBuf> = inputs.iter().map(PathBuf::from).collect();
                    predict(&model, top, &files)?
                }
            }
            Command::Export { model, out } if is_text_model(&model.model) => {
                let (_, model) = open_text_model(&model, None)?;
                let labels = text_labels(&model);
                write_text_model(&out, &model, &labels, None)?;
                println!("wrote {}", out.display());
            }
            Command::Export { model, out } => {
                let (device, model, labels) = open_model(&model)?;
                let _ = device;
                write_model(&out, &model, &labels, None)?;
                println!("wrote {}", out.display());
            }
            Command::Bench { device } => bench(device)?,
            Command::HeadDemo {
                device,
                recipe,
                epochs,
            } => {
                let recipe = load_recipe(recipe.as_deref(), epochs, Modality::Image)?;
                let selected = block_on(device::select(device))?;
                println!("device: {}", selected.info.summary());
                let set = FeatureSet::synthetic(&SyntheticSpec::default())?;
                let mut bar = Bar::new("rows");
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

    fn load_recipe(
        path: Option<&Path>,
        epochs: Option<usize>,
        modality: Modality,
    ) -> Result<Recipe, AnyError> {
        let mut recipe = match path {
            Some(path) => Recipe::from_json_for(
                &std::fs::read_to_string(path)
                    .map_err(|err| format!("cannot read recipe {}: {err}", path.display()))?,
                modality,
            )
            .map_err(|err| format!("{}: {err}", path.display()))?,
            None => Recipe::defaults(modality),
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
    /// The `bench` worker: one JSON answer per JSON command line, errors included, until
    /// `quit` or the end of stdin.
    fn bench(choice: DeviceChoice) -> Result<(), AnyError> {
        use serde_json::{Value, json};
        use tabtune::bench::{Bench, BenchSpec};
        let selected = block_on(device::select(choice))?;
        let mut current: Option<Bench> = None;
        let mut out = std::io::stdout().lock();
        for line in std::io::stdin().lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let answer = (|| -> Result<Value, AnyError> {
                let mut command: Value = serde_json::from_str(&line)
                    .map_err(|e| format!("not a JSON command: {e}: {line}"))?;
                let op = command
                    .as_object_mut()
                    .and_then(|o| o.remove("op"))
                    .and_then(|v| v.as_str().map(String::from))
                    .ok_or("a command needs \"op\": setup, rep, info or quit")?;
                Ok(match op.as_str() {
                    "info" => json!({
                        "device": selected.info,
                        "version": env!("CARGO_PKG_VERSION"),
                        "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
                    }),
                    "setup" => {
                        current = None;
                        let spec: BenchSpec =
                            serde_json::from_value(command).map_err(|e| format!("setup: {e}"))?;
                        let start = std::time::Instant::now();
                        let mut bench = Bench::new(spec, &selected.device)?;
                        let setup_s = start.elapsed().as_secs_f64();
                        let warmup = block_on(bench.rep())?;
                        current = Some(bench);
                        json!({"setup_s": setup_s, "warmup_s": warmup.seconds})
                    }
                    "rep" => {
                        let bench = current.as_mut().ok_or("rep before a successful setup")?;
                        reset_peak_rss();
                        let rep = block_on(bench.rep())?;
                        let mut value = serde_json::to_value(rep)?;
                        value["peak_rss_bytes"] = json!(peak_rss());
                        value
                    }
                    "quit" => return Ok(Value::Null),
                    other => {
                        return Err(
                            format!("unknown op {other:?}: setup, rep, info or quit").into()
                        );
                    }
                })
            })();
            let answer = match answer {
                Ok(Value::Null) => break,
                Ok(mut value) => {
                    value["ok"] = json!(true);
                    value
                }
                Err(err) => json!({"ok": false, "error": err.to_string()}),
            };
            writeln!(out, "{answer}")?;
            out.flush()?;
        }
        Ok(())
    }

    /// Start a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM).
    fn reset_peak_rss() {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }

    /// This process's peak resident set (VmHWM) in bytes, where /proc tells it.
    fn peak_rss() -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

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
        let write = |name: &str, data: &[u8]| write_file(out, name, data);
        write("model.safetensors", &bytes)?;
        write("config.json", config.to_json().as_bytes())?;
        if let Some(report) = report {
            write("report.json", report.as_bytes())?;
        }
        Ok(())
    }

    /// Write `out/name`: beside, then renamed, so an interrupted export never leaves a half file.
    fn write_file(out: &Path, name: &str, data: &[u8]) -> Result<(), AnyError> {
        let tmp = out.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, data)
            .and_then(|_| std::fs::rename(&tmp, out.join(name)))
            .map_err(|e| format!("cannot write {}: {e}", out.join(name).display()).into())
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
        let mut bar = Bar::new("images");
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
        print_report(&report, "images");
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
        let model = model.folded();
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
            println!("{name}: {}", top_classes(&probs, &labels, top));
        }
        if failed == files.len() {
            return Err(format!("none of the {failed} files could be read").into());
        }
        Ok(())
    }

    /// The device and the text model in `args.model` (a folder), with `options` (`None`: the
    /// ones a tabtune export was trained with).
    fn open_text_model(
        args: &ModelArgs,
        options: Option<&TextOptions>,
    ) -> Result<(Device, TextModel), AnyError> {
        let selected = block_on(device::select(args.device))?;
        println!("device: {}", selected.info.summary());
        let model = TextModel::open(&args.model, options, &selected.device)?;
        println!(
            "model: {} from {} ({} layers, hidden {}, max length {}, {:?} pooling)",
            model.config.model_type,
            args.model.display(),
            model.block_count(),
            model.feature_dim(),
            model.options.max_length,
            model.options.pooling
        );
        Ok((selected.device, model))
    }

    /// The text model's class names (its id2label), else numbered.
    fn text_labels(model: &TextModel) -> Vec<String> {
        model.labels.clone().unwrap_or_else(|| {
            (0..model.net.classifier.linear.weight.dims()[1])
                .map(|i| i.to_string())
                .collect()
        })
    }

    fn open_text(data: &Path, args: &TextArgs) -> Result<TextSet, AnyError> {
        let set = TextSet::open(data, &args.columns())?;
        println!(
            "data: {} texts in {} classes from {}",
            set.len(),
            set.classes.len(),
            data.display()
        );
        for (c, class) in set.classes.iter().enumerate() {
            let n = set.labels.iter().filter(|&&l| l as usize == c).count();
            println!("  {class}: {n}");
        }
        for (at, why) in &set.skipped {
            println!("  skipped {at}: {why}");
        }
        Ok(set)
    }

    /// A Hugging Face `BertForSequenceClassification` folder: model.safetensors, config.json,
    /// the tokenizer files, and report.json.
    fn write_text_model(
        out: &Path,
        model: &TextModel,
        labels: &[String],
        report: Option<String>,
    ) -> Result<(), AnyError> {
        std::fs::create_dir_all(out)
            .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
        let bytes = model.to_safetensors(&[("format", "pt".into())])?;
        let config = serde_json::to_string_pretty(&model.hf_config(labels))?;
        let write = |name: &str, data: &[u8]| write_file(out, name, data);
        write("model.safetensors", &bytes)?;
        write("config.json", config.as_bytes())?;
        write("tokenizer.json", &model.tokenizer.json)?;
        if let Some(report) = report {
            write("report.json", report.as_bytes())?;
        }
        Ok(())
    }

    fn finetune_text(
        model_args: &ModelArgs,
        data: &Path,
        text: &TextArgs,
        val: Option<&Path>,
        out: &Path,
        recipe: &Recipe,
        batch: usize,
    ) -> Result<(), AnyError> {
        let (device, model) = open_text_model(model_args, Some(&recipe.text))?;
        let mut set = open_text(data, text)?;
        let split = match val {
            None => None,
            Some(val) => {
                let v = open_text(val, text)?;
                if v.classes != set.classes {
                    return Err(format!(
                        "{}: labels {:?} differ from the training data's {:?}",
                        val.display(),
                        v.classes,
                        set.classes
                    )
                    .into());
                }
                let n = set.len();
                set.texts.extend(v.texts);
                set.labels.extend(v.labels);
                set.origins.extend(v.origins);
                set.skipped.extend(v.skipped);
                Some(((0..n).collect(), (n..set.len()).collect()))
            }
        };
        let mut bar = Bar::new("texts");
        let (model, report) = block_on(train::finetune_text(
            model,
            &set,
            split,
            recipe,
            batch,
            &device,
            &mut |e| bar.show(e),
        ))?;
        bar.clear();
        print_report(&report, "texts");
        let json = serde_json::to_string_pretty(&serde_json::json!({
            "recipe": recipe,
            "report": report,
        }))?;
        write_text_model(out, &model, &report.classes, Some(json))?;
        // The tokenizer's companions, so transformers' AutoTokenizer finds what it expects.
        for name in [
            "tokenizer_config.json",
            "special_tokens_map.json",
            "vocab.txt",
        ] {
            let from = model_args.model.join(name);
            if from.exists() {
                std::fs::copy(&from, out.join(name))
                    .map_err(|e| format!("cannot copy {}: {e}", from.display()))?;
            }
        }
        println!("wrote {}", out.display());
        Ok(())
    }

    fn eval_text(
        model_args: &ModelArgs,
        data: &Path,
        text: &TextArgs,
        batch: usize,
    ) -> Result<(), AnyError> {
        let (device, model) = open_text_model(model_args, None)?;
        let labels = text_labels(&model);
        let set = open_text(data, text)?;
        let index: std::collections::HashMap<&str, u32> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.as_str(), i as u32))
            .collect();
        let mut truth = Vec::with_capacity(set.len());
        for class in &set.classes {
            if !index.contains_key(class.as_str()) {
                return Err(format!(
                    "{}: label {class:?} is not one of the model's labels {labels:?}",
                    data.display()
                )
                .into());
            }
        }
        for &l in &set.labels {
            truth.push(index[set.classes[l as usize].as_str()]);
        }
        let texts: Vec<&str> = set.texts.iter().map(String::as_str).collect();
        let probs = block_on(train::text::predict(
            &model.net,
            &model.tokenizer,
            &texts,
            batch,
            &device,
        ))?;
        print!(
            "{}",
            Metrics::new(&labels, &truth, &train::text::argmax(&probs)).table()
        );
        Ok(())
    }

    fn predict_text(model_args: &ModelArgs, top: usize, texts: &[String]) -> Result<(), AnyError> {
        let (device, model) = open_text_model(model_args, None)?;
        let labels = text_labels(&model);
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let probs = block_on(train::text::predict(
            &model.net,
            &model.tokenizer,
            &refs,
            32,
            &device,
        ))?;
        for (text, p) in texts.iter().zip(&probs) {
            println!("{text:?}: {}", top_classes(p, &labels, top));
        }
        Ok(())
    }

    /// "label 97.1%, label 2.9%" for the `top` largest probabilities.
    fn top_classes(probs: &[f32], labels: &[String], top: usize) -> String {
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]));
        order
            .iter()
            .take(top.max(1))
            .map(|&c| format!("{} {:.1}%", labels[c], probs[c] * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn print_report(report: &train::RunReport, unit: &str) {
        for (name, why) in &report.skipped {
            println!("skipped {name}: {why}");
        }
        if report.truncated > 0 {
            println!(
                "truncated: {} inputs were cut at the maximum length",
                report.truncated
            );
        }
        if let Some((n, s)) = report.features {
            println!(
                "features: {n} {unit} in {s:.1} s ({:.1} {unit}/s)",
                n as f64 / s
            );
        }
        for phase in &report.phases {
            println!(
                "{}: {} train / {} val {unit}, {} steps in {:.2} s ({:.1} {unit}/s), kept epoch {}, val accuracy {}{}",
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
    }

    /// Progress: a redrawn bar with ETA on a terminal, plain lines (epochs, every 10% of
    /// features) when not.
    struct Bar {
        unit: &'static str,
        tty: bool,
        last_features: usize,
    }

    impl Bar {
        fn new(unit: &'static str) -> Self {
            Self {
                unit,
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
                    let detail = format!("{throughput:.1} {}/s, ETA {}", self.unit, eta(*eta_s));
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
