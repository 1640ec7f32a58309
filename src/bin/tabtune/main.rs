//! The tabtune command line: arguments in, one session call each, printing out. Everything a
//! command does is the core's `Session`; this file only translates.

#[cfg(not(target_arch = "wasm32"))]
mod args;
#[cfg(not(target_arch = "wasm32"))]
mod print;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    use clap::Parser;
    match cli::run(args::Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tabtune: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

// The binary is native-only; wasm32 builds of the package (for the browser tests) get a stub.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::path::Path;

    use futures_lite::future::block_on;
    use tabtune::data::FeatureSet;
    use tabtune::data::features::SyntheticSpec;
    use tabtune::device::{self, DeviceChoice};
    use tabtune::session::{Checkpoint, Dataset, Event, ModelFiles, ModelKind, Session};
    use tabtune::train::{self, Control, Recipe};

    use super::args::{Command, ModelArgs, RecipeArgs};
    use super::print::{self, Bar};

    type AnyError = Box<dyn std::error::Error>;

    /// Where a run keeps its checkpoint inside --out (removed when the run completes).
    const CHECKPOINT: &str = "checkpoint";

    pub fn run(cli: super::args::Cli) -> Result<(), AnyError> {
        match cli.command {
            Command::Devices { device } => {
                println!("{}", block_on(device::select(device))?.info.summary())
            }
            Command::Finetune {
                model,
                data,
                val,
                out,
                recipe,
                resume,
                feature_batch,
            } => {
                let mut session = open(&model)?;
                session.feature_batch = feature_batch;
                let kind = session.kind();
                let dataset = Dataset::open(kind, &data.data, val.as_deref(), &data.columns())?;
                print::summary(&session.set_dataset(dataset)?, &data.data);
                let unit = unit(kind);
                let mut bar = Bar::new(unit);
                let mut on = |e: Event| match e {
                    Event::Checkpoint(c) => save_checkpoint(&out, c),
                    e => bar.event(&e),
                };
                let report = match resume {
                    Some(dir) => {
                        let checkpoint = load_checkpoint(&dir)?;
                        println!("resuming from the checkpoint in {}", dir.display());
                        block_on(session.resume(checkpoint, &mut on))?
                    }
                    None => block_on(session.train(&build_recipe(&recipe, kind)?, &mut on))?,
                };
                print::report(&report, unit);
                write_files(&out, &block_on(session.export())?)?;
                std::fs::remove_dir_all(out.join(CHECKPOINT)).ok();
                std::fs::remove_dir_all(out.join(".checkpoint.old")).ok();
                println!("wrote {}", out.display());
            }
            Command::Eval { model, data, batch } => {
                let mut session = open(&model)?;
                session.feature_batch = batch;
                let dataset = Dataset::open(session.kind(), &data.data, None, &data.columns())?;
                print::summary(&dataset.summary(), &data.data);
                let evaluation = block_on(session.evaluate(&dataset))?;
                for (name, why) in &evaluation.skipped {
                    println!("skipped {name}: {why}");
                }
                if let Some(m) = &evaluation.metrics {
                    print!("{}", m.table());
                }
            }
            Command::Predict { model, top, inputs } => predict(&model, top, &inputs)?,
            Command::Export { model, out } => {
                let mut session = open(&model)?;
                write_files(&out, &block_on(session.export())?)?;
                println!("wrote {}", out.display());
            }
            Command::Bench { device } => {
                let selected = block_on(device::select(device))?;
                tabtune::bench::serve(&selected, std::io::stdin().lock(), std::io::stdout().lock())?
            }
            Command::HeadDemo { device, recipe } => head_demo(device, &recipe)?,
        }
        Ok(())
    }

    fn unit(kind: ModelKind) -> &'static str {
        match kind {
            ModelKind::Image => "images",
            ModelKind::Text => "texts",
        }
    }

    fn build_recipe(args: &RecipeArgs, kind: ModelKind) -> Result<Recipe, AnyError> {
        let json = match &args.recipe {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|err| format!("cannot read recipe {}: {err}", path.display()))?,
            ),
            None => None,
        };
        let recipe = Recipe::with_sets(json.as_deref(), &args.sets()?, kind.modality());
        Ok(recipe.map_err(|err| match &args.recipe {
            Some(path) => format!("{}: {err}", path.display()),
            None => err.to_string(),
        })?)
    }

    /// A session on the chosen device with the model in `args` loaded.
    fn open(args: &ModelArgs) -> Result<Session, AnyError> {
        let selected = block_on(device::select(args.device))?;
        println!("device: {}", selected.info.summary());
        let mut session = Session::new(selected.device);
        let info = session.load(ModelFiles::open(&args.model)?)?;
        println!(
            "model: {} from {} ({} kind, {} parameters, {} tensors{})",
            info.arch,
            args.model.display(),
            info.kind,
            info.parameters,
            info.tensors,
            info.classes
                .as_ref()
                .map_or(String::new(), |c| format!(", {} classes", c.len()))
        );
        Ok(session)
    }

    fn predict(args: &ModelArgs, top: usize, inputs: &[String]) -> Result<(), AnyError> {
        let mut session = open(args)?;
        if session.kind() == ModelKind::Text {
            let ranked = block_on(session.predict_texts(inputs))?;
            if let Some(o) = session.text_options() {
                println!("text: max length {}, {:?} pooling", o.max_length, o.pooling);
            }
            for (text, scored) in inputs.iter().zip(&ranked) {
                println!("{text:?}: {}", print::top(scored, top));
            }
            return Ok(());
        }
        let (mut names, mut images) = (Vec::new(), Vec::new());
        for file in inputs {
            let image = std::fs::read(file)
                .map_err(|e| tabtune::Error::Data(format!("{file}: {e}")))
                .and_then(|bytes| tabtune::data::image::decode(&bytes, file));
            match image {
                Ok(image) => {
                    names.push(file);
                    images.push(image);
                }
                Err(err) => println!("{file}: skipped: {err}"),
            }
        }
        if images.is_empty() {
            return Err(format!("none of the {} files could be read", inputs.len()).into());
        }
        for (name, scored) in names.iter().zip(block_on(session.predict_images(images))?) {
            println!("{name}: {}", print::top(&scored, top));
        }
        Ok(())
    }

    /// Write `out/name` for each file: beside, then renamed, so an interrupted export never
    /// leaves a half file.
    fn write_files(out: &Path, files: &[(String, Vec<u8>)]) -> Result<(), AnyError> {
        std::fs::create_dir_all(out)
            .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
        for (name, data) in files {
            let tmp = out.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, data)
                .and_then(|_| std::fs::rename(&tmp, out.join(name)))
                .map_err(|e| format!("cannot write {}: {e}", out.join(name).display()))?;
        }
        Ok(())
    }

    /// A run's checkpoint into `out/checkpoint`, replaced whole (written beside, then swapped
    /// in) so that a kill never leaves half of one; `--resume out` continues from it.
    fn save_checkpoint(out: &Path, c: &Checkpoint) -> Control {
        let [dir, new, old] = [CHECKPOINT, ".checkpoint.new", ".checkpoint.old"].map(|d| out.join(d));
        let swap = || -> Result<(), AnyError> {
            std::fs::remove_dir_all(&new).ok();
            write_files(&new, &c.files)?;
            std::fs::remove_dir_all(&old).ok();
            if dir.exists() {
                std::fs::rename(&dir, &old)?;
            }
            std::fs::rename(&new, &dir)?;
            std::fs::remove_dir_all(&old).ok();
            Ok(())
        };
        let epoch = c.epoch.map_or(String::new(), |e| format!(" epoch {e}"));
        match swap() {
            Ok(()) => println!("checkpoint after {}{epoch}: {}", c.phase, dir.display()),
            Err(err) => println!("warning: no checkpoint written: {err}"),
        }
        Control::Continue
    }

    /// The files of the checkpoint in `out` (or of the one a kill left mid-swap).
    fn load_checkpoint(out: &Path) -> Result<Vec<(String, Vec<u8>)>, AnyError> {
        let dir = [CHECKPOINT, ".checkpoint.old"].map(|d| out.join(d)).into_iter().find(|d| d.is_dir());
        let dir = dir.ok_or_else(|| format!("{}: no checkpoint to resume", out.join(CHECKPOINT).display()))?;
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or(".").to_string();
            if path.is_file() && !name.starts_with('.') {
                let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                files.push((name, bytes));
            }
        }
        Ok(files)
    }

    fn head_demo(device: DeviceChoice, args: &RecipeArgs) -> Result<(), AnyError> {
        let recipe = build_recipe(args, ModelKind::Image)?;
        let selected = block_on(device::select(device))?;
        println!("device: {}", selected.info.summary());
        let set = FeatureSet::synthetic(&SyntheticSpec::default())?;
        let mut bar = Bar::new("rows");
        let (_, report) = block_on(train::train_head(
            &set,
            &recipe,
            &selected.device,
            &mut |e| bar.event(&Event::Progress(e)),
        ))?;
        let (first, last) = report.loss_drop(3);
        println!(
            "trained {} steps in {:.3}s: loss {first:.4} -> {last:.4}",
            report.losses.len(),
            report.seconds
        );
        Ok(())
    }
}
