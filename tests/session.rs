//! The session core that every front end drives: one class order whatever the labels came
//! from, and runs interrupted mid-phase that resume to the same weights.
#![cfg(not(target_arch = "wasm32"))] // folders and files on disk

use std::path::{Path, PathBuf};

use burn::prelude::Device;
use futures_lite::future::block_on;
use tabtune::Error;
use tabtune::data::source::ListedImages;
use tabtune::data::{Columns, ImageFolder, ImageSource, TextSet};
use tabtune::session::{Checkpoint, Dataset, Event, ModelFiles, ModelKind, Session};
use tabtune::train::recipe::OptimizerKind;
use tabtune::train::{Control, Progress, Recipe, RunReport};

mod common;
use common::tensors;

/// Dropout draws from the CPU device's generator, one per process: runs that compare their
/// weights take turns.
static GENERATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Digits 0, 1, 2 copied into class folders named "2", "9", "10" (in that order of digit).
fn folder_2_9_10(name: &str, per_class: usize) -> PathBuf {
    let root = common::mnist_subset(name, 3, per_class);
    for (digit, label) in [(0, "2x"), (1, "9x"), (2, "10x")] {
        std::fs::rename(root.join(digit.to_string()), root.join(label)).unwrap();
    }
    for label in ["2", "9", "10"] {
        std::fs::rename(root.join(format!("{label}x")), root.join(label)).unwrap();
    }
    root
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn labels_2_9_10_get_the_same_indices_from_a_folder_a_list_a_table_and_the_page() {
    let root = folder_2_9_10("order", 2);
    let want = ["2", "9", "10"];
    let folder = ImageFolder::open(&root).unwrap();
    assert_eq!(folder.classes, want);
    // The first files are class "2" (digit 0): label 0.
    assert!(folder.items[0].0.starts_with(root.join("2")) && folder.items[0].1 == 0);

    let mut list = String::from("file,label\n");
    for label in ["10", "9", "2"] {
        for f in files(&root.join(label)) {
            list += &format!(
                "{label}/{},{label}\n",
                f.file_name().unwrap().to_string_lossy()
            );
        }
    }
    std::fs::write(root.join("list.csv"), list).unwrap();
    let listed = ImageFolder::from_list(&root.join("list.csv")).unwrap();
    assert_eq!(listed.classes, want);
    assert_eq!(
        listed.items[0].1, 2,
        "the list's first file is labelled 10: index 2"
    );

    let table = "text,label\na,10\nb,10\nc,9\nd,9\ne,2\nf,2\n";
    let set = TextSet::parse(table.as_bytes(), "t.csv", &Columns::default()).unwrap();
    assert_eq!(set.classes, want);
    assert_eq!(set.labels, [2, 2, 1, 1, 0, 0]);

    // The page's items go through the core's listing.
    let items = ["10", "9", "2"]
        .iter()
        .map(|l| (format!("{l}.png"), l.to_string()))
        .collect();
    let page = ListedImages::new(items, None, Box::new(|_, _| unreachable!())).unwrap();
    assert_eq!(page.classes(), want);
    assert_eq!(page.labels(), [2, 1, 0]);
    std::fs::remove_dir_all(root).ok();
}

/// Head 2 epochs, then the last 2 blocks for 3 epochs, on 6 digits per class.
fn recipe() -> Recipe {
    Recipe::from_json(
        r#"{"head": {"epochs": 2, "batch_size": 8}, "seed": 7,
            "finetune": {"epochs": 3, "batch_size": 8, "unfreeze": {"last": 2}}}"#,
    )
    .unwrap()
}

fn session(data: &Path) -> Session {
    let mut session = Session::new(Device::flex());
    session
        .load(ModelFiles::open(&common::asset("models/mobilenet_v2")).unwrap())
        .unwrap();
    let dataset = Dataset::open(ModelKind::Image, data, None, &Columns::default()).unwrap();
    session.set_dataset(dataset).unwrap();
    session
}

fn file<'a>(files: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &files
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

type Files = Vec<(String, Vec<u8>)>;

/// `recipe` on a fresh session from `open`, uninterrupted: its report, export and checkpoints
/// (phase, epoch).
fn uninterrupted(
    open: &dyn Fn() -> Session,
    recipe: &Recipe,
) -> (RunReport, Files, Vec<(String, Option<usize>)>) {
    let mut whole = open();
    let (mut checkpoints, mut phases, mut epochs) = (Vec::new(), Vec::new(), 0);
    let report = block_on(whole.train(recipe, &mut |e| {
        match e {
            Event::Checkpoint(c) => checkpoints.push((c.phase.clone(), c.epoch)),
            Event::PhaseEnd(p) => phases.push(p.phase.clone()),
            Event::Progress(Progress::Epoch { .. }) => epochs += 1,
            _ => {}
        }
        Control::Continue
    }))
    .unwrap();
    assert_eq!(epochs, recipe.head.epochs + 3);
    assert_eq!(phases, ["head", "finetune"]);
    assert_eq!(report.resumed_after, None);
    (report, block_on(whole.export()).unwrap(), checkpoints)
}

/// Train on a fresh session, cancelled at the first step of fine-tuning epoch `at` (the tab
/// closed, the process killed): the last checkpoint it left.
fn interrupted(open: &dyn Fn() -> Session, recipe: &Recipe, at: usize) -> Checkpoint {
    let mut first = open();
    let mut kept: Option<Checkpoint> = None;
    let err = block_on(first.train(recipe, &mut |e| match e {
        Event::Checkpoint(c) => {
            kept = Some(c.clone());
            Control::Continue
        }
        Event::Progress(Progress::Step { phase, epoch, .. })
            if phase == "finetune" && *epoch == at =>
        {
            Control::Cancel
        }
        _ => Control::Continue,
    }))
    .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    kept.expect("a checkpoint")
}

/// Resume `checkpoint` in a fresh session: the report and the weights equal `report`'s and
/// `whole`'s (to 1e-6), and the report says where it took up.
fn resumes_to(
    open: &dyn Fn() -> Session,
    checkpoint: &Checkpoint,
    report: &RunReport,
    whole: &[(String, Vec<u8>)],
    after: &str,
) {
    let mut second = open();
    let resumed =
        block_on(second.resume(checkpoint.files.clone(), &mut |_| Control::Continue)).unwrap();
    assert_eq!(resumed.resumed_after.as_deref(), Some(after));
    assert_eq!(resumed.phases.len(), 2);
    assert_eq!(resumed.phases[0].losses, report.phases[0].losses);
    assert_eq!(
        resumed.phases[1].losses.len(),
        report.phases[1].losses.len()
    );
    let loss_diff = common::max_abs_diff(&resumed.phases[1].losses, &report.phases[1].losses);
    assert!(loss_diff <= 1e-6, "phase-2 losses differ by {loss_diff}");
    assert_eq!(
        resumed.phases[1].val_accuracy,
        report.phases[1].val_accuracy
    );
    assert_eq!(resumed.phases[1].best_epoch, report.phases[1].best_epoch);
    assert_eq!(resumed.metrics, report.metrics);
    let exported = block_on(second.export()).unwrap();
    let diff = common::max_diff(
        file(&exported, "model.safetensors"),
        file(whole, "model.safetensors"),
    );
    println!("resumed after {after}: weights differ by at most {diff:e}, losses by {loss_diff:e}");
    assert!(diff <= 1e-6, "weights differ by {diff}");
    assert_eq!(file(&exported, "config.json"), file(whole, "config.json"));
}

#[test]
fn an_image_run_interrupted_in_epoch_2_of_3_resumes_to_the_uninterrupted_weights() {
    let _turn = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let data = folder_2_9_10("resume", 6);
    let recipe = recipe();
    let open = || session(&data);
    let (report, whole, checkpoints) = uninterrupted(&open, &recipe);
    assert_eq!(report.classes, ["2", "9", "10"]);
    let want = [("head", None), ("finetune", Some(1)), ("finetune", Some(2))];
    let want: Vec<_> = want.iter().map(|(p, e)| (p.to_string(), *e)).collect();
    assert_eq!(
        checkpoints, want,
        "a checkpoint after the head and each epoch but the last"
    );

    // Killed in epoch 2 of 3: it continues from the checkpoint after epoch 1.
    let checkpoint = interrupted(&open, &recipe, 2);
    assert_eq!(
        (checkpoint.phase.as_str(), checkpoint.epoch),
        ("finetune", Some(1))
    );
    resumes_to(&open, &checkpoint, &report, &whole, "finetune epoch 1");

    // From the head phase's checkpoint too.
    let head = interrupted(&open, &recipe, 1);
    assert_eq!((head.phase.as_str(), head.epoch), ("head", None));
    resumes_to(&open, &head, &report, &whole, "head");

    // A checkpoint resumed on other data, or missing a part, says so.
    let other = folder_2_9_10("resume-other", 5);
    let mut wrong = session(&other);
    let err = block_on(wrong.resume(checkpoint.files.clone(), &mut |_| Control::Continue))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("resume it with the recipe and data of its run"),
        "{err}"
    );
    let partial: Vec<_> = checkpoint
        .files
        .iter()
        .filter(|(n, _)| n != "epoch-optimizer.safetensors")
        .cloned()
        .collect();
    let err = block_on(open().resume(partial, &mut |_| Control::Continue))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no epoch-optimizer.safetensors"), "{err}");
    std::fs::remove_dir_all(data).ok();
    std::fs::remove_dir_all(other).ok();
}

/// The first `per_class` rotten_tomatoes reviews of each class.
fn reviews(per_class: usize) -> TextSet {
    let csv = common::asset("datasets/rotten_tomatoes.csv");
    let columns = Columns {
        per_class: Some(per_class),
        ..Columns::default()
    };
    TextSet::open(&csv, &columns).unwrap()
}

/// A CPU session with all-MiniLM-L6-v2 and `set`.
fn text_session(set: &TextSet) -> Session {
    let mut session = Session::new(Device::flex());
    let model = ModelFiles::open(&common::asset("models/all-MiniLM-L6-v2")).unwrap();
    session.load(model).unwrap();
    let dataset = Dataset::Text {
        set: set.clone(),
        split: None,
    };
    session.set_dataset(dataset).unwrap();
    session
}

#[test]
fn a_text_run_with_adamw_interrupted_in_epoch_2_of_3_resumes_to_the_uninterrupted_weights() {
    let _turn = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let set = reviews(6);
    let open = || text_session(&set);
    let recipe = Recipe::from_json_for(
        r#"{"head": {"epochs": 1, "batch_size": 4}, "seed": 3, "text": {"max_length": 32},
            "finetune": {"epochs": 3, "batch_size": 4, "unfreeze": {"last": 1}}}"#,
        tabtune::train::Modality::Text,
    )
    .unwrap();
    assert_eq!(
        recipe.finetune.as_ref().unwrap().optimizer,
        OptimizerKind::Adamw
    );
    let (report, whole, _) = uninterrupted(&open, &recipe);
    let checkpoint = interrupted(&open, &recipe, 2);
    assert_eq!(checkpoint.epoch, Some(1));
    resumes_to(&open, &checkpoint, &report, &whole, "finetune epoch 1");
}

/// A run whose loss or gradients stop being finite keeps its last good model, says what
/// happened and which rate to lower, runs no later phase, and leaves the session usable.
#[test]
fn a_diverging_phase_keeps_its_last_good_model_and_the_session_goes_on() {
    let _turn = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let data = folder_2_9_10("diverge", 6);
    let open = || session(&data);
    let train = |s: &mut Session, recipe: &Recipe, warnings: &mut Vec<String>| {
        let mut phases = Vec::new();
        let report = block_on(s.train(recipe, &mut |e| {
            match e {
                Event::Warning(w) => warnings.push(w.to_string()),
                Event::PhaseEnd(p) => phases.push(p.phase.clone()),
                _ => {}
            }
            Control::Continue
        }))
        .unwrap();
        (report, phases)
    };
    let weights =
        |s: &mut Session| file(&block_on(s.export()).unwrap(), "model.safetensors").to_vec();

    // The model fine-tuning starts from: the head phase alone.
    let head_only = Recipe {
        finetune: None,
        ..recipe()
    };
    let mut reference = open();
    let (head_report, _) = train(&mut reference, &head_only, &mut Vec::new());
    let head_weights = weights(&mut reference);

    // Fine-tuning at a learning rate of 1e38: the first step throws every weight to about
    // 1e38, the second step's logits overflow.
    let mut diverging = recipe();
    let finetune = diverging.finetune.as_mut().unwrap();
    finetune.optimizer = OptimizerKind::Sgd;
    (finetune.lr, finetune.backbone_lr) = (1e38, 1e38);
    let mut s = open();
    let mut warnings = Vec::new();
    let (report, phases) = train(&mut s, &diverging, &mut warnings);
    assert_eq!(phases, ["head", "finetune"]);
    let why = report.diverged().expect("the fine-tuning phase diverged");
    println!("{why}");
    assert!(why.contains("at finetune epoch 1, step 2"), "{why}");
    assert!(why.contains("kept the model it started from"), "{why}");
    assert!(
        why.contains(
            "lower finetune.lr (1e38) and finetune.backbone_lr (1e38), e.g. to 1e37 and 1e37"
        ),
        "{why}"
    );
    assert!(warnings.iter().any(|w| w == why), "{warnings:?}");
    assert_eq!(report.phases[1].losses.len(), 1, "one step was taken");
    // What was kept is the head phase's model, weight for weight, with its metrics.
    assert_eq!(common::max_diff(&weights(&mut s), &head_weights), 0.0);
    assert_eq!(report.metrics, head_report.metrics);
    // The session goes on: it predicts, and a sound recipe trains.
    let digit = image::open(files(&data.join("9"))[0].as_path())
        .unwrap()
        .to_rgb8();
    let ranked = block_on(s.predict_images(vec![digit])).unwrap();
    assert_eq!(ranked[0].len(), 3);
    let (again, _) = train(&mut s, &head_only, &mut Vec::new());
    assert_eq!(again.diverged(), None);

    // The head phase diverging: fine-tuning does not run.
    let mut head_diverging = recipe();
    head_diverging.head.optimizer = OptimizerKind::Sgd;
    head_diverging.head.lr = 1e38;
    let (report, phases) = train(&mut open(), &head_diverging, &mut Vec::new());
    assert_eq!(phases, ["head"], "no phase after a diverged one");
    let why = report.diverged().unwrap();
    assert!(
        why.contains("at head epoch 1, step 2") && why.contains("lower head.lr"),
        "{why}"
    );

    // Diverging in epoch 2 of fine-tuning (a checkpoint after epoch 1 resumed at 1e38, as a
    // run whose rate turns too high later would): it keeps epoch 1's model, the one a run of
    // that single epoch ends with.
    // (A constant rate: epoch 1 of three is then epoch 1 of one.)
    let constant = |epochs| Recipe {
        finetune: Some(tabtune::train::recipe::FinetunePhase {
            epochs,
            schedule: tabtune::train::recipe::Schedule::Constant,
            warmup_fraction: 0.0,
            ..recipe().finetune.unwrap()
        }),
        ..recipe()
    };
    let mut single = open();
    train(&mut single, &constant(1), &mut Vec::new());
    let epoch_1 = weights(&mut single);
    let checkpoint = interrupted(&open, &constant(3), 2);
    let mut files = checkpoint.files.clone();
    let saved = files.iter_mut().find(|(n, _)| n == "report.json").unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&saved.1).unwrap();
    json["recipe"]["finetune"]["lr"] = 1e38.into();
    json["recipe"]["finetune"]["backbone_lr"] = 1e38.into();
    saved.1 = serde_json::to_vec(&json).unwrap();
    let mut resumed = open();
    let report = block_on(resumed.resume(files, &mut |_| Control::Continue)).unwrap();
    let why = report.diverged().unwrap();
    assert!(why.contains("at finetune epoch 2, step 4"), "{why}");
    assert!(why.contains("kept its best epoch so far (1)"), "{why}");
    assert_eq!(common::max_diff(&weights(&mut resumed), &epoch_1), 0.0);
    std::fs::remove_dir_all(data).ok();
}

/// Cancelled while computing features, during fine-tuning, and then an export: each time the
/// session keeps its model, dataset and last trained model, and the next run is the one an
/// untouched session gives.
#[test]
fn a_run_cancelled_in_its_features_or_its_fine_tuning_leaves_the_session_usable() {
    let _turn = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let data = folder_2_9_10("cancel", 6);
    let recipe = recipe();
    let weights =
        |s: &mut Session| file(&block_on(s.export()).unwrap(), "model.safetensors").to_vec();
    let mut s = session(&data);
    // A model trained first: what the session predicts and exports until a run ends.
    let head_only = Recipe {
        finetune: None,
        ..recipe.clone()
    };
    block_on(s.train(&head_only, &mut |_| Control::Continue)).unwrap();
    let before = weights(&mut s);
    for (when, at) in [
        (
            "features",
            &(|e: &Event| matches!(e, Event::Progress(Progress::Features { .. })))
                as &dyn Fn(&Event) -> bool,
        ),
        (
            "fine-tuning",
            &|e: &Event| matches!(e, Event::Progress(Progress::Step { phase, epoch: 2, .. }) if phase == "finetune"),
        ),
    ] {
        let err = block_on(s.train(&recipe, &mut |e| match at(&e) {
            true => Control::Cancel,
            false => Control::Continue,
        }))
        .unwrap_err();
        assert!(matches!(err, Error::Cancelled), "{when}: {err}");
        assert_eq!(weights(&mut s), before, "{when}: the trained model changed");
        assert!(
            s.summary().is_some() && s.kind() == ModelKind::Image,
            "{when}"
        );
    }
    // The next run is an untouched session's.
    let (report, whole, _) = uninterrupted(&|| session(&data), &recipe);
    let again = block_on(s.train(&recipe, &mut |_| Control::Continue)).unwrap();
    assert_eq!(again.phases[1].losses, report.phases[1].losses);
    assert_eq!(
        common::max_diff(&weights(&mut s), file(&whole, "model.safetensors")),
        0.0
    );
    std::fs::remove_dir_all(data).ok();
}

/// `files` written to a fresh folder and loaded in a new session.
fn reloaded(files: &[(String, Vec<u8>)], name: &str) -> Session {
    let dir = std::env::temp_dir().join(format!("tabtune-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    tabtune::session::folder::write(&dir, files).unwrap();
    let mut session = Session::new(Device::flex());
    session.load(ModelFiles::open(&dir).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    session
}

/// The largest difference between two rankings' probabilities, label by label.
fn ranking_diff(
    a: &[Vec<tabtune::session::model::Scored>],
    b: &[Vec<tabtune::session::model::Scored>],
) -> f32 {
    let mut worst = 0f32;
    for (a, b) in a.iter().zip(b) {
        for s in a {
            let t = b.iter().find(|t| t.label == s.label).unwrap();
            worst = worst.max((s.probability - t.probability).abs());
        }
    }
    worst
}

/// LoRA on MiniLM: phase 2 trains adapters on the query and value projections (PEFT's default
/// for BERT) and the head, nothing else (the optimiser holds state for those alone); the export
/// is the merged model, which predicts as the adapted one did, and PEFT's adapter folder; a run
/// interrupted in epoch 2 resumes to the same adapters.
#[test]
fn a_lora_text_run_trains_only_its_adapters_and_exports_them_merged_and_as_peft() {
    let _turn = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let set = reviews(6);
    let base_dir = common::asset("models/all-MiniLM-L6-v2");
    let open = || text_session(&set);
    let recipe = Recipe::from_json_for(
        r#"{"head": {"epochs": 1, "batch_size": 4}, "seed": 3, "text": {"max_length": 32},
            "finetune": {"epochs": 3, "batch_size": 4, "lr": 5e-3, "lora": {"r": 4, "alpha": 8}}}"#,
        tabtune::train::Modality::Text,
    )
    .unwrap();
    let (report, whole, _) = uninterrupted(&open, &recipe);

    // PEFT's adapter folder: 6 layers x (query, value), rank 4, the head as modules_to_save.
    let config: serde_json::Value =
        serde_json::from_slice(file(&whole, "adapter/adapter_config.json")).unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["task_type"], "SEQ_CLS");
    assert_eq!(config["r"], 4);
    assert_eq!(config["lora_alpha"], 8.0);
    assert_eq!(config["modules_to_save"], serde_json::json!(["classifier"]));
    let targets: Vec<String> = serde_json::from_value(config["target_modules"].clone()).unwrap();
    assert_eq!(targets.len(), 12, "{targets:?}");
    assert!(
        targets.iter().all(|t| t.starts_with("bert.encoder.layer.")
            && (t.ends_with(".attention.self.query") || t.ends_with(".attention.self.value"))),
        "{targets:?}"
    );
    let adapter = tensors(file(&whole, "adapter/adapter_model.safetensors"));
    assert_eq!(adapter.len(), 12 * 2 + 2, "{:?}", adapter.keys());
    let a = &adapter["base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight"];
    let b = &adapter["base_model.model.bert.encoder.layer.0.attention.self.query.lora_B.weight"];
    assert_eq!(
        (a.0.as_slice(), b.0.as_slice()),
        (&[4, 384][..], &[384, 4][..])
    );
    assert!(b.1.iter().any(|v| *v != 0.0), "B trained away from zero");
    assert_eq!(adapter["base_model.model.classifier.weight"].0, [2, 384]);

    // The merged model: the adapted projections moved, every other encoder weight is the
    // base's, bit for bit.
    let base = tensors(&std::fs::read(base_dir.join("model.safetensors")).unwrap());
    let merged = tensors(file(&whole, "model.safetensors"));
    let (mut moved, mut same) = (0, 0);
    for (key, (_, values)) in &merged {
        let Some(name) = key.strip_prefix("bert.") else {
            continue;
        };
        let original = &base[name].1;
        let adapted = targets.iter().any(|t| key == &format!("{t}.weight"));
        if adapted {
            assert!(
                common::max_abs_diff(values, original) > 0.0,
                "{key} did not move"
            );
            moved += 1;
        } else {
            assert_eq!(values, original, "{key} changed without an adapter");
            same += 1;
        }
    }
    assert_eq!(moved, 12);
    println!(
        "LoRA text: {moved} weights merged, {same} unchanged, losses {:?}",
        report.phases[1].losses
    );

    // The optimiser's state after epoch 1 covers the adapters and the head only.
    let checkpoint = interrupted(&open, &recipe, 2);
    let (_, optimizer) = safetensors::SafeTensors::read_metadata(file(
        &checkpoint.files,
        "epoch-optimizer.safetensors",
    ))
    .unwrap();
    let paths: Vec<String> = optimizer.metadata().clone().unwrap().into_keys().collect();
    assert_eq!(paths.len(), 12 * 2 + 2, "{paths:?}");
    assert!(
        paths
            .iter()
            .all(|p| p.contains(".lora.") || p.starts_with("classifier.")),
        "{paths:?}"
    );
    resumes_to(&open, &checkpoint, &report, &whole, "finetune epoch 1");

    // The merged export predicts as the adapted model does.
    let mut trained = open();
    block_on(trained.train(&recipe, &mut |_| Control::Continue)).unwrap();
    let texts: Vec<String> = [
        "a gripping, beautifully acted film",
        "dull, and far too long",
    ]
    .map(String::from)
    .to_vec();
    let adapted = block_on(trained.predict_texts(&texts)).unwrap();
    let exported = block_on(trained.export()).unwrap();
    let mut merged = reloaded(&exported, "lora-text");
    let diff = ranking_diff(&adapted, &block_on(merged.predict_texts(&texts)).unwrap());
    println!("LoRA text: merged vs adapted probabilities differ by {diff:e}");
    assert!(diff < 1e-5, "{diff}");

    // The adapter folder alone, put onto the base model, predicts the same (classes named by
    // index: PEFT's folder has no names) and trains further from where it was.
    let only = block_on(trained.export_parts(false, true)).unwrap();
    assert!(only.iter().all(|(n, _)| n != "model.safetensors"));
    let base = ModelFiles::open(&base_dir)
        .unwrap()
        .with_adapter(
            "adapter",
            std::str::from_utf8(file(&only, "adapter/adapter_config.json")).unwrap(),
            file(&only, "adapter/adapter_model.safetensors"),
        )
        .unwrap();
    let mut onto = Session::new(Device::flex());
    onto.load(base).unwrap();
    let again = block_on(onto.predict_texts(&texts)).unwrap();
    let labels = trained.labels().unwrap().to_vec();
    let renamed: Vec<Vec<tabtune::session::model::Scored>> = again
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|s| tabtune::session::model::Scored {
                    label: labels[s.label.parse::<usize>().unwrap()].clone(),
                    probability: s.probability,
                })
                .collect()
        })
        .collect();
    let diff = ranking_diff(&adapted, &renamed);
    println!("LoRA text: the adapter on the base model vs the trained session: {diff:e}");
    assert!(diff < 1e-5, "{diff}");
    let default = onto.default_recipe();
    let lora = default.finetune.as_ref().unwrap().lora.as_ref().unwrap();
    assert_eq!((lora.r, lora.alpha), (4, 8.0));
    onto.set_dataset(Dataset::Text {
        set: set.clone(),
        split: None,
    })
    .unwrap();
    let further = Recipe {
        head: tabtune::train::HeadPhase {
            epochs: 0,
            ..recipe.head.clone()
        },
        ..recipe.clone()
    };
    let report = block_on(onto.train(&further, &mut |_| Control::Continue)).unwrap();
    assert_eq!(
        report.phases.len(),
        1,
        "the adapter's own head kept, its adapters trained"
    );
    let first = report.phases[0].losses[0];
    println!("LoRA text: training the loaded adapter further starts at loss {first}");
}

/// LoRA on MobileNetV2: adapters on every 1x1 convolution (34), before their BatchNorm; the
/// depthwise convolutions and BatchNorm statistics stay the base's; the merged export predicts
/// as the adapted model does.
#[test]
fn a_lora_image_run_adapts_the_1x1_convolutions_and_merges_them() {
    let _turn = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let data = folder_2_9_10("lora", 4);
    let recipe = Recipe::from_json(
        r#"{"head": {"epochs": 1, "batch_size": 6}, "seed": 5,
            "finetune": {"epochs": 1, "batch_size": 6, "lr": 5e-3, "lora": {"r": 4, "alpha": 8}}}"#,
    )
    .unwrap();
    let mut trained = session(&data);
    block_on(trained.train(&recipe, &mut |_| Control::Continue)).unwrap();
    let files = block_on(trained.export()).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(file(&files, "adapter/adapter_config.json")).unwrap();
    let targets: Vec<String> = serde_json::from_value(config["target_modules"].clone()).unwrap();
    assert_eq!(targets.len(), 34, "{targets:?}");
    for name in [
        "features.1.conv.1",
        "features.2.conv.0.0",
        "features.2.conv.2",
        "features.18.0",
    ] {
        assert!(
            targets.contains(&name.to_string()),
            "{name} not in {targets:?}"
        );
    }
    assert_eq!(config["modules_to_save"], serde_json::json!(["classifier"]));
    let adapter = tensors(file(&files, "adapter/adapter_model.safetensors"));
    assert_eq!(
        adapter["base_model.model.features.2.conv.0.0.lora_A.weight"].0,
        [4, 16, 1, 1]
    );
    assert_eq!(
        adapter["base_model.model.features.2.conv.0.0.lora_B.weight"].0,
        [96, 4, 1, 1]
    );
    assert_eq!(adapter["base_model.model.classifier.1.weight"].0, [3, 1280]);

    let base =
        tensors(&std::fs::read(common::asset("models/mobilenet_v2/model.safetensors")).unwrap());
    let merged = tensors(file(&files, "model.safetensors"));
    for (key, (_, values)) in &merged {
        if key.starts_with("classifier.") {
            continue;
        }
        let adapted = targets.iter().any(|t| key == &format!("{t}.weight"));
        assert_eq!(adapted, values != &base[key].1, "{key}: adapted {adapted}");
    }

    let images: Vec<image::RgbImage> = files_of(&data)
        .iter()
        .take(3)
        .map(|p| image::open(p).unwrap().to_rgb8())
        .collect();
    let adapted = block_on(trained.predict_images(images.clone())).unwrap();
    let mut merged = reloaded(&files, "lora-image");
    let diff = ranking_diff(&adapted, &block_on(merged.predict_images(images)).unwrap());
    println!("LoRA image: merged vs adapted probabilities differ by {diff:e}");
    assert!(diff < 1e-5, "{diff}");
    std::fs::remove_dir_all(data).ok();
}

/// Every image file under the class folders of `dir`.
fn files_of(dir: &Path) -> Vec<PathBuf> {
    files(dir).iter().flat_map(|d| files(d)).collect()
}
