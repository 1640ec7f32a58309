//! The command line's arguments. Recipe flags are `--set path=value` over the recipe's own
//! fields; the few named flags are shorthands for such settings (see `RecipeArgs::sets`).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tabtune::data::Columns;
use tabtune::device::DeviceChoice;

#[derive(Parser)]
#[command(
    name = "tabtune",
    version,
    about = "Fine-tune pre-trained models on your own device"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Args)]
pub struct ModelArgs {
    /// A model folder (model.safetensors or a .pth, config.json; a text model also
    /// tokenizer.json), or a weights file. What it is comes from the files themselves.
    #[arg(long)]
    pub model: PathBuf,
    /// A PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) for the
    /// --model it was trained on: predicts with it, or trains it further.
    #[arg(long, value_name = "DIR")]
    pub adapter: Option<PathBuf>,
    /// auto, gpu or cpu.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
}

/// The data: images or audio (a folder of class subfolders, or a CSV/TSV list of `file,label`
/// lines) or text (a CSV/TSV/JSONL table, or a folder of class subfolders of .txt files).
#[derive(clap::Args)]
pub struct DataArgs {
    /// The labelled data.
    #[arg(long)]
    pub data: PathBuf,
    /// Tables: column (CSV/TSV) or key (JSONL) of the text; detected from the header if left out.
    #[arg(long)]
    pub text_column: Option<String>,
    /// Tables: column or key of the label; detected from the header if left out.
    #[arg(long)]
    pub label_column: Option<String>,
    /// Text: use only the first N texts of each class (a quick run on a large set).
    #[arg(long)]
    pub per_class: Option<usize>,
}

impl DataArgs {
    pub fn columns(&self) -> Columns {
        Columns {
            text: self.text_column.clone(),
            label: self.label_column.clone(),
            per_class: self.per_class,
        }
    }
}

/// The recipe: a JSON file, then `--set`s, then the shorthands.
#[derive(clap::Args)]
pub struct RecipeArgs {
    /// Recipe as a JSON file (fields left out keep the defaults).
    #[arg(long)]
    pub recipe: Option<PathBuf>,
    /// Set a recipe field: `--set finetune.epochs=2`, `--set head.lr=3e-4`, `--set finetune=null`.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub sets: Vec<String>,
    /// Shorthand for head.epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Shorthand for finetune.epochs.
    #[arg(long)]
    pub finetune_epochs: Option<usize>,
    /// Shorthand for finetune=null: stop after the head.
    #[arg(long)]
    pub no_finetune: bool,
    /// Shorthand for finetune.unfreeze: "all" or the number of last blocks.
    #[arg(long)]
    pub unfreeze: Option<String>,
    /// Shorthand for finetune.lora.r: phase 2 trains low-rank adapters of this rank (and the
    /// head) instead of the weights; the export adds PEFT's adapter folder.
    #[arg(long, value_name = "RANK")]
    pub lora: Option<usize>,
    /// Shorthand for head.augment and finetune.augment.
    #[arg(long)]
    pub augment: bool,
    /// Shorthand for val_fraction.
    #[arg(long)]
    pub val_fraction: Option<f64>,
    /// Shorthand for seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Shorthand for text.max_length.
    #[arg(long)]
    pub max_length: Option<usize>,
    /// Shorthand for text.pooling: mean, cls or pooler.
    #[arg(long)]
    pub pooling: Option<String>,
}

impl RecipeArgs {
    /// Every setting as `path=value`, the shorthands after the `--set`s.
    pub fn sets(&self) -> Result<Vec<String>, String> {
        let unfreeze = match self.unfreeze.as_deref() {
            None => None,
            Some("all") => Some("\"all\"".to_string()),
            Some(n) => Some(match n.parse::<usize>() {
                Ok(n) => format!("{{\"last\": {n}}}"),
                Err(_) => {
                    return Err(format!(
                        "--unfreeze: expected \"all\" or a number of blocks, got {n:?}"
                    ));
                }
            }),
        };
        let augment = self.augment.then(|| "true".to_string());
        let shorthands = [
            ("head.epochs", self.epochs.map(|n| n.to_string())),
            (
                "finetune.epochs",
                self.finetune_epochs.map(|n| n.to_string()),
            ),
            ("finetune.unfreeze", unfreeze),
            ("finetune.lora.r", self.lora.map(|r| r.to_string())),
            ("head.augment", augment.clone()),
            ("finetune.augment", augment.filter(|_| !self.no_finetune)),
            ("val_fraction", self.val_fraction.map(|v| v.to_string())),
            ("seed", self.seed.map(|v| v.to_string())),
            ("text.max_length", self.max_length.map(|v| v.to_string())),
            (
                "text.pooling",
                self.pooling.as_ref().map(|p| format!("{p:?}")),
            ),
            ("finetune", self.no_finetune.then(|| "null".to_string())),
        ];
        let set = shorthands
            .into_iter()
            .filter_map(|(path, v)| Some(format!("{path}={}", v?)));
        Ok(self.sets.iter().cloned().chain(set).collect())
    }
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once
pub enum Command {
    /// Say which compute device would be used.
    Devices {
        /// auto, gpu or cpu.
        #[arg(long, default_value = "auto")]
        device: DeviceChoice,
    },
    /// Fine-tune a pre-trained model: phase 1 trains a new head on the frozen backbone,
    /// phase 2 (unless finetune is null) the whole model or its last blocks.
    Finetune {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        data: DataArgs,
        /// Validation data of the same form and classes (else a stratified split).
        #[arg(long)]
        val: Option<PathBuf>,
        /// Where to write model.safetensors, config.json, report.json (and the tokenizer files).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        recipe: RecipeArgs,
        /// Continue the run whose checkpoint is in this --out folder (after its head phase).
        #[arg(long)]
        resume: Option<PathBuf>,
        /// Examples per batch through the frozen model when caching features.
        #[arg(long)]
        feature_batch: Option<usize>,
        /// Keep the dataset's examples in --out's report.json (misclassified names and texts,
        /// transcripts, files left out); without it the model folder holds nothing from the
        /// data (the terminal shows them either way).
        #[arg(long)]
        report_examples: bool,
        /// After a LoRA run, write PEFT's adapter folder (--out/adapter) without the merged
        /// model.safetensors: the small download, loaded onto the original model.
        #[arg(long)]
        adapter_only: bool,
    },
    /// Evaluate a model (e.g. one `finetune --out` wrote) on data labelled with its labels.
    Eval {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        data: DataArgs,
        /// Examples per batch.
        #[arg(long)]
        batch: Option<usize>,
    },
    /// Classify image files (audio files with an audio model; with a text model, texts),
    /// printing the top classes.
    Predict {
        #[command(flatten)]
        model: ModelArgs,
        /// Classes to print per input.
        #[arg(long, default_value_t = 3)]
        top: usize,
        /// Also write each input's results to this JSON file: every class's probability (a
        /// sensor classifier's: each window's), a regression model's values at every step, or
        /// a transcript.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Image or audio files, or the texts themselves for a text model.
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
    /// Speed workloads for `make bench` (bench/run.mjs): JSON commands on stdin, one JSON
    /// answer per line on stdout (see `tabtune::bench::serve`).
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
        #[command(flatten)]
        recipe: RecipeArgs,
    },
}
