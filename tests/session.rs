//! The session core that every front end drives: one class order whatever the labels came
//! from, and a run interrupted after its head phase that resumes to the same weights.
#![cfg(not(target_arch = "wasm32"))] // folders and files on disk

use std::path::{Path, PathBuf};

use burn::prelude::Device;
use futures_lite::future::block_on;
use tabtune::Error;
use tabtune::data::source::ListedImages;
use tabtune::data::{Columns, ImageFolder, ImageSource, TextSet};
use tabtune::session::{Checkpoint, Dataset, Event, ModelFiles, ModelKind, Session};
use tabtune::train::{Control, Recipe};

mod common;

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

/// Head 2 epochs, then the last 2 blocks for 2 epochs, on 6 digits per class.
fn recipe() -> Recipe {
    Recipe::from_json(
        r#"{"head": {"epochs": 2, "batch_size": 8}, "seed": 7,
            "finetune": {"epochs": 2, "batch_size": 8, "unfreeze": {"last": 2}}}"#,
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

#[test]
fn a_run_interrupted_after_its_head_phase_resumes_to_the_uninterrupted_weights() {
    let data = folder_2_9_10("resume", 6);
    let recipe = recipe();

    // Uninterrupted, with its events.
    let mut whole = session(&data);
    let (mut checkpoints, mut phases, mut epochs) = (0, Vec::new(), 0);
    let report = block_on(whole.train(&recipe, &mut |e| {
        match e {
            Event::Checkpoint(c) => {
                checkpoints += 1;
                assert_eq!(c.phase, "head");
            }
            Event::PhaseEnd(p) => phases.push(p.phase.clone()),
            Event::Progress(tabtune::train::Progress::Epoch { .. }) => epochs += 1,
            _ => {}
        }
        Control::Continue
    }))
    .unwrap();
    assert_eq!((checkpoints, epochs), (1, 4));
    assert_eq!(phases, ["head", "finetune"]);
    assert_eq!(report.classes, ["2", "9", "10"]);
    assert_eq!(report.resumed_after, None);
    let uninterrupted = block_on(whole.export()).unwrap();

    // Interrupted right after the checkpoint (the tab closed, the process killed).
    let mut first = session(&data);
    let mut kept: Option<Checkpoint> = None;
    let err = block_on(first.train(&recipe, &mut |e| match e {
        Event::Checkpoint(c) => {
            kept = Some(c.clone());
            Control::Cancel
        }
        _ => Control::Continue,
    }))
    .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    let checkpoint = kept.expect("a checkpoint after the head phase");

    // A fresh session resumes from the checkpoint's files alone.
    let mut second = session(&data);
    let saved: serde_json::Value =
        serde_json::from_slice(file(&checkpoint.files, "report.json")).unwrap();
    let recipe_saved: Recipe = serde_json::from_value(saved["recipe"].clone()).unwrap();
    let report_saved = serde_json::from_value(saved["report"].clone()).unwrap();
    assert_eq!(recipe_saved, recipe);
    let config = String::from_utf8(file(&checkpoint.files, "config.json").to_vec()).unwrap();
    let weights = file(&checkpoint.files, "model.safetensors").to_vec();
    let resumed =
        block_on(
            second.resume(weights, config, &recipe_saved, report_saved, &mut |_| {
                Control::Continue
            }),
        )
        .unwrap();
    assert_eq!(resumed.resumed_after.as_deref(), Some("head"));
    assert_eq!(resumed.phases.len(), 2);
    assert_eq!(resumed.phases[0].losses, report.phases[0].losses);
    let loss_diff = resumed.phases[1]
        .losses
        .iter()
        .zip(&report.phases[1].losses)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(loss_diff <= 1e-6, "phase-2 losses differ by {loss_diff}");
    assert_eq!(resumed.metrics, report.metrics);
    let exported = block_on(second.export()).unwrap();
    let diff = common::max_diff(
        file(&exported, "model.safetensors"),
        file(&uninterrupted, "model.safetensors"),
    );
    println!(
        "resumed vs uninterrupted: weights differ by at most {diff:e}, losses by {loss_diff:e}"
    );
    assert!(diff <= 1e-6, "weights differ by {diff}");
    assert_eq!(
        file(&exported, "config.json"),
        file(&uninterrupted, "config.json")
    );
    std::fs::remove_dir_all(data).ok();
}
