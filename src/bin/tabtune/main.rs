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
    use tabtune::session::{Checkpoint, Dataset, Event, ModelFiles, ModelKind, Session, folder};
    use tabtune::train::{self, Control, Recipe};

    use super::args::{Command, ModelArgs, RecipeArgs};
    use super::print::Bar;

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
                report_examples,
                adapter_only,
            } => {
                let mut session = open(&model)?;
                session.feature_batch = feature_batch;
                let kind = session.kind();
                let dataset = Dataset::open(kind, &data.data, val.as_deref(), &data.columns())?;
                print!(
                    "data: {}",
                    session
                        .set_dataset(dataset)?
                        .describe(&data.data.display().to_string())
                );
                let unit = kind.unit();
                let mut bar = Bar::new(unit);
                let mut on = |e: Event| match e {
                    Event::Checkpoint(c) => save_checkpoint(&out, c),
                    e => bar.event(&e),
                };
                let report = match resume {
                    Some(dir) => {
                        let checkpoint = folder::read(&dir.join(CHECKPOINT))
                            .map_err(|e| format!("no checkpoint to resume: {e}"))?;
                        println!("resuming from the checkpoint in {}", dir.display());
                        block_on(session.resume(checkpoint, &mut on))?
                    }
                    None => {
                        let defaults = session.default_recipe();
                        let recipe = build_recipe(&recipe, kind, Some(&defaults))?;
                        let json = serde_json::to_string(&recipe)?;
                        if let Some(plan) = session.lora_plan(Some(&json))? {
                            let trained = plan.adapter_params + plan.head_params;
                            println!(
                                "LoRA: adapters on {} layers; trains {trained} of {} parameters \
                                 ({:.2}%); the adapter folder is about {:.2} MB",
                                plan.layers,
                                plan.model_params,
                                100.0 * trained as f64 / plan.model_params as f64,
                                plan.adapter_bytes as f64 / 1e6
                            );
                        }
                        block_on(session.train(&recipe, &mut on))?
                    }
                };
                print!("{}", report.describe(unit));
                let files = block_on(session.export_parts(report_examples, adapter_only))?;
                folder::write(&out, &files)?;
                folder::remove(&out.join(CHECKPOINT));
                println!("wrote {}", out.display());
            }
            Command::Eval { model, data, batch } => {
                let mut session = open(&model)?;
                session.feature_batch = batch;
                let dataset = Dataset::open(session.kind(), &data.data, None, &data.columns())?;
                print!(
                    "data: {}",
                    dataset.summary().describe(&data.data.display().to_string())
                );
                let evaluation = block_on(session.evaluate(&dataset))?;
                for (name, why) in &evaluation.skipped {
                    println!("skipped {name}: {why}");
                }
                if let Some(m) = &evaluation.metrics {
                    print!("{}", m.table());
                }
                if let Some(m) = &evaluation.regression {
                    print!("{}", m.table());
                }
                if let Some(r) = &evaluation.transcription {
                    println!(
                        "word error rate {:.1}%, character error rate {:.1}% ({} clips)",
                        r.wer * 100.0,
                        r.cer * 100.0,
                        r.count
                    );
                    print!("{}", r.table(10));
                }
            }
            Command::Predict {
                model,
                top,
                json,
                inputs,
            } => predict(&model, top, json.as_deref(), &inputs)?,
            Command::Export { model, out } => {
                let mut session = open(&model)?;
                folder::write(&out, &block_on(session.export())?)?;
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

    /// The recipe of `args` over `defaults` (the session's: with an adapter loaded, its
    /// adapters train further).
    fn build_recipe(
        args: &RecipeArgs,
        kind: ModelKind,
        defaults: Option<&Recipe>,
    ) -> Result<Recipe, AnyError> {
        let json = match &args.recipe {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|err| format!("cannot read recipe {}: {err}", path.display()))?,
            ),
            None => defaults.map(serde_json::to_string).transpose()?,
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
        let mut files = ModelFiles::open(&args.model)?;
        if let Some(dir) = &args.adapter {
            let read = |name: &str| {
                std::fs::read(dir.join(name))
                    .map_err(|e| format!("{}: {e}", dir.join(name).display()))
            };
            let config = String::from_utf8_lossy(&read("adapter_config.json")?).to_string();
            let weights = read("adapter_model.safetensors")?;
            files = files.with_adapter(&dir.display().to_string(), &config, &weights)?;
            println!("adapter: {}", dir.display());
        }
        let info = session.load(files)?;
        println!(
            "model: {}",
            info.describe(&args.model.display().to_string())
        );
        Ok(session)
    }

    /// Every class's probability for each input, as JSON, into `path` (when asked).
    fn write_scores(
        path: Option<&Path>,
        names: &[&String],
        ranked: &[Vec<tabtune::session::model::Scored>],
    ) -> Result<(), AnyError> {
        let rows = names
            .iter()
            .zip(ranked)
            .map(|(name, scored)| score_row(name, scored))
            .collect();
        write_json(path, rows)
    }

    /// One input's (or window's) row of --json: every class's probability.
    fn score_row(name: &str, scored: &[tabtune::session::model::Scored]) -> serde_json::Value {
        serde_json::json!({"input": name, "scores": scored})
    }

    /// --json's file: one row per input (or window).
    fn write_json(path: Option<&Path>, rows: Vec<serde_json::Value>) -> Result<(), AnyError> {
        let Some(path) = path else {
            return Ok(());
        };
        let json = serde_json::to_string_pretty(&rows)?;
        std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(())
    }

    fn predict(
        args: &ModelArgs,
        n: usize,
        json: Option<&Path>,
        inputs: &[String],
    ) -> Result<(), AnyError> {
        let mut session = open(args)?;
        if session.kind() == ModelKind::Text {
            let ranked = block_on(session.predict_texts(inputs))?;
            if let Some(o) = session.text_options() {
                println!("text: max length {}, {:?} pooling", o.max_length, o.pooling);
            }
            for (text, scored) in inputs.iter().zip(&ranked) {
                println!("{text:?}: {}", tabtune::session::top(scored, n));
            }
            return write_scores(json, &inputs.iter().collect::<Vec<_>>(), &ranked);
        }
        if session.kind() == ModelKind::Transcription {
            let mut files = Vec::new();
            for file in inputs {
                files.push((
                    file.clone(),
                    std::fs::read(file).map_err(|e| format!("{file}: {e}"))?,
                ));
            }
            let mut rows = Vec::new();
            for t in block_on(session.transcribe(files, false))? {
                println!("{} ({:.1} s):{}", t.name, t.seconds, t.text);
                rows.push(
                    serde_json::json!({"input": t.name, "seconds": t.seconds, "text": t.text}),
                );
            }
            return write_json(json, rows);
        }
        if session.kind() == ModelKind::Series {
            let mut files = Vec::new();
            for file in inputs {
                match std::fs::read(file) {
                    Ok(bytes) => files.push((file.clone(), bytes)),
                    Err(err) => println!("{file}: skipped: cannot read: {err}"),
                }
            }
            // Each window a row of --json's scores, named "{file} @ {start} s"; a regression
            // model's rows are each file's values.
            let mut rows = Vec::new();
            for p in block_on(session.predict_series(files))? {
                match p {
                    train::series::SeriesPrediction::Classes {
                        name,
                        labels,
                        windows,
                    } => {
                        for (start, probs) in windows {
                            let scored = tabtune::session::ranked(vec![probs], &labels).remove(0);
                            let at = format!("{name} @ {start:.2} s");
                            println!("{at}: {}", tabtune::session::top(&scored, n));
                            rows.push(score_row(&at, &scored));
                        }
                    }
                    train::series::SeriesPrediction::Values {
                        name,
                        names,
                        step_s,
                        values,
                    } => {
                        println!(
                            "{name}: {} rows, {step_s} s apart ({})",
                            values.len(),
                            names.join(", ")
                        );
                        let every = (values.len() / 10).max(1);
                        for (i, row) in values.iter().enumerate().step_by(every) {
                            let cells: Vec<String> =
                                row.iter().map(|v| format!("{v:.4}")).collect();
                            println!("  {:.2} s: {}", i as f64 * step_s, cells.join(" "));
                        }
                        rows.push(serde_json::json!({
                            "input": name, "names": names, "step_s": step_s, "values": values
                        }));
                    }
                }
            }
            return write_json(json, rows);
        }
        if session.kind() == ModelKind::Audio {
            let (mut names, mut clips) = (Vec::new(), Vec::new());
            for file in inputs {
                let clip = std::fs::read(file)
                    .map_err(|e| tabtune::Error::Data(format!("{file}: cannot read: {e}")))
                    .and_then(|bytes| tabtune::data::audio::load(bytes, file));
                match clip {
                    Ok(clip) => {
                        names.push(file);
                        clips.push(clip);
                    }
                    Err(err) => println!("{file}: skipped: {err}"),
                }
            }
            if clips.is_empty() {
                return Err(format!("none of the {} files could be read", inputs.len()).into());
            }
            let ranked = block_on(session.predict_audio(&clips))?;
            for (name, scored) in names.iter().zip(&ranked) {
                println!("{name}: {}", tabtune::session::top(scored, n));
            }
            return write_scores(json, &names, &ranked);
        }
        let (mut names, mut images) = (Vec::new(), Vec::new());
        for file in inputs {
            match tabtune::data::image::open(file) {
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
        let ranked = block_on(session.predict_images(images))?;
        for (name, scored) in names.iter().zip(&ranked) {
            println!("{name}: {}", tabtune::session::top(scored, n));
        }
        write_scores(json, &names, &ranked)
    }

    /// A run's checkpoint into `out/checkpoint`, replaced whole so that a kill never leaves
    /// half of one; `--resume out` continues from it.
    fn save_checkpoint(out: &Path, c: &Checkpoint) -> Control {
        let epoch = c.epoch.map_or(String::new(), |e| format!(" epoch {e}"));
        match folder::replace(&out.join(CHECKPOINT), &c.files) {
            Ok(()) => println!(
                "checkpoint after {}{epoch}: {}",
                c.phase,
                out.join(CHECKPOINT).display()
            ),
            Err(err) => println!("warning: no checkpoint written: {err}"),
        }
        Control::Continue
    }

    fn head_demo(device: DeviceChoice, args: &RecipeArgs) -> Result<(), AnyError> {
        let recipe = build_recipe(args, ModelKind::Image, None)?;
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
