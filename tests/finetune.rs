//! Phase 2 and export on the CPU with the real MobileNetV2 (from `make assets`): BatchNorm
//! statistics stay frozen, only the unfrozen blocks and the head move, the best epoch is kept,
//! and the exported safetensors (torchvision key names) loads back to the same logits.
#![cfg(not(target_arch = "wasm32"))] // the file system and the CLI binary are native

use std::path::PathBuf;

use burn::module::Module;
use burn::prelude::*;
use futures_lite::future::block_on;
use tabtune::data::{FolderSource, ImageFolder};
use tabtune::models::{ImageModel, MobileNetV2};
use tabtune::train::recipe::{FinetunePhase, Unfreeze};
use tabtune::train::{Control, Recipe, finetune_images};
use tabtune::weights::{WeightSource, inspect};

mod common;
use common::{asset, inputs};

fn digits(name: &str, classes: usize, per_class: usize) -> PathBuf {
    common::mnist_subset(&format!("ft-{name}"), classes, per_class)
}

fn flat(model: &MobileNetV2) -> Vec<(String, Vec<f32>)> {
    let mut out = Vec::new();
    for tensor in burn::store::ModuleSnapshot::collect(model, None, None, false) {
        let data = burn::store::bridge::to_data(&tensor).unwrap();
        if data.dtype() == burn::tensor::DType::F32 {
            out.push((tensor.name.clone(), data.iter::<f32>().collect()));
        }
    }
    out
}

fn mobilenet(model: &ImageModel) -> &MobileNetV2 {
    match model {
        ImageModel::MobileNetV2(m) => m,
        other => panic!("expected MobileNetV2, got {:?}", other.arch()),
    }
}

#[test]
fn phase_two_moves_only_the_unfrozen_blocks_and_keeps_batchnorm_statistics() {
    let device = Device::flex();
    let weights = WeightSource::Path(asset("models/mobilenet_v2/model.safetensors"));
    let (model, _) = ImageModel::load(&weights, &device).unwrap();
    let before = flat(mobilenet(&model));
    let data = digits("phase2", 2, 6);
    let folder = ImageFolder::open(&data).unwrap();
    let (source, _) = FolderSource::new(&folder, None).unwrap();
    let recipe = Recipe {
        val_fraction: 0.34,
        finetune: Some(FinetunePhase {
            epochs: 2,
            batch_size: 4,
            unfreeze: Unfreeze::Last(2),
            ..Default::default()
        }),
        ..Recipe::default()
    };
    let (tuned, report) = block_on(finetune_images(
        model,
        &source,
        None,
        &recipe,
        Default::default(),
        8,
        &device,
        &mut |_| Control::Continue,
    ))
    .unwrap();
    println!("{}", serde_json::to_string(&report.phases).unwrap());
    assert_eq!(report.phases.len(), 2);
    assert_eq!(report.phases[1].phase, "finetune");
    assert_eq!(report.phases[1].losses.len(), 2 * 2); // 8 train images, batch 4, 2 epochs
    assert!(report.metrics.is_some());
    let after = flat(mobilenet(&tuned));
    assert_eq!(before.len(), after.len());
    // Unfreeze::Last(2) = block 17 (blocks.16) and the last 1x1 conv (`last`).
    let trainable = |path: &str| path.starts_with("blocks.16.") || path.starts_with("last.");
    let mut moved = Vec::new();
    for ((path, a), (path_b, b)) in before.iter().zip(&after) {
        assert_eq!(path, path_b);
        if path.starts_with("classifier.") {
            continue; // a new head, of another shape
        }
        let changed = a != b;
        if path.ends_with("running_mean") || path.ends_with("running_var") {
            assert!(
                !changed,
                "{path}: BatchNorm statistics must stay frozen in phase 2"
            );
        } else if trainable(path) {
            moved.push(path.clone());
            assert!(changed, "{path} is unfrozen but did not move");
        } else {
            assert!(!changed, "{path} is frozen but moved");
        }
    }
    assert!(moved.iter().any(|p| p.ends_with("gamma")), "{moved:?}");

    // Export under torchvision's names: the same key set as the original checkpoint, and the
    // file loads back (from bytes, as the browser does) to the same logits.
    let bytes = tuned.to_safetensors(&[]).unwrap();
    let exported = WeightSource::Bytes {
        name: "exported.safetensors".into(),
        bytes,
    };
    let keys_out = inspect(&exported).unwrap();
    let keys_in = inspect(&weights).unwrap();
    assert_eq!(
        keys_out.keys().collect::<Vec<_>>(),
        keys_in.keys().collect::<Vec<_>>()
    );
    assert_eq!(keys_out["classifier.1.weight"], vec![2, 1280]);
    let (back, _) = ImageModel::load(&exported, &device).unwrap();
    let a: Vec<f32> = tuned.forward(inputs(&device)).into_data().iter().collect();
    let b: Vec<f32> = back.forward(inputs(&device)).into_data().iter().collect();
    assert_eq!(a, b);
    assert_eq!(back.valid().classes(), 2);
    std::fs::remove_dir_all(data).ok();
}

#[test]
fn unfreezing_more_blocks_than_the_model_has_is_a_recipe_error() {
    let device = Device::flex();
    let weights = WeightSource::Path(asset("models/mobilenet_v2/model.safetensors"));
    let (model, _) = ImageModel::load(&weights, &device).unwrap();
    let n = model.block_count();
    let err = model
        .trainable(Some(Unfreeze::Last(n + 1)))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("finetune.unfreeze") && err.contains(&n.to_string()),
        "{err}"
    );
}

#[test]
fn every_architecture_is_told_from_its_keys_and_exports_under_its_own_names() {
    let device = Device::flex();
    for (file, arch) in [
        (
            "models/mobilenet_v2/mobilenet_v2-b0353104.pth",
            "mobilenet_v2",
        ),
        (
            "models/efficientnet_lite0/model.safetensors",
            "efficientnet_lite0",
        ),
    ] {
        let source = WeightSource::Path(asset(file));
        let (model, _) = ImageModel::load(&source, &device).unwrap();
        assert_eq!(model.arch().name(), arch);
        assert_eq!(model.classes(), 1000);
        let exported = WeightSource::Bytes {
            name: "x.safetensors".into(),
            bytes: model.to_safetensors(&[]).unwrap(),
        };
        // Key names and shapes as the original checkpoint, num_batches_tracked included.
        assert_eq!(
            inspect(&exported).unwrap(),
            inspect(&source).unwrap(),
            "{arch}"
        );
    }
    // No pre-trained ResNet is in our registries: a seeded one goes out and back.
    for (arch, depth) in [
        (tabtune::models::Arch::ResNet18, "resnet18"),
        (tabtune::models::Arch::ResNet50, "resnet50"),
    ] {
        let model = ImageModel::new(arch, 5, &device).unwrap();
        let bytes = model.to_safetensors(&[]).unwrap();
        let source = WeightSource::Bytes {
            name: format!("{depth}.safetensors"),
            bytes,
        };
        let keys = inspect(&source).unwrap();
        assert!(
            keys.contains_key("layer4.1.bn2.num_batches_tracked"),
            "{depth}"
        );
        assert_eq!(keys["fc.weight"][0], 5);
        let (back, _) = ImageModel::load(&source, &device).unwrap();
        assert_eq!(back.arch().name(), depth);
        let x = inputs(&device);
        let a: Vec<f32> = model.forward(x.clone()).into_data().iter().collect();
        let b: Vec<f32> = back.forward(x).into_data().iter().collect();
        assert_eq!(a, b, "{depth}");
    }
}

#[test]
fn augmented_head_phase_and_a_validation_folder() {
    let device = Device::flex();
    let weights = WeightSource::Path(asset("models/mobilenet_v2/model.safetensors"));
    let (model, _) = ImageModel::load(&weights, &device).unwrap();
    let train_dir = digits("aug-train", 2, 3);
    let val_dir = digits("aug-val", 2, 2);
    let (train, val) = (
        ImageFolder::open(&train_dir).unwrap(),
        ImageFolder::open(&val_dir).unwrap(),
    );
    let (source, split) = FolderSource::new(&train, Some(&val)).unwrap();
    assert_eq!(split, Some((vec![0, 1, 2, 3, 4, 5], vec![6, 7, 8, 9])));
    let mut recipe = Recipe {
        finetune: None,
        ..Recipe::default()
    };
    recipe.head.epochs = 2;
    recipe.head.batch_size = 4;
    recipe.head.augment = true;
    let (_, report) = block_on(finetune_images(
        model,
        &source,
        split,
        &recipe,
        Default::default(),
        8,
        &device,
        &mut |_| Control::Continue,
    ))
    .unwrap();
    // Augmented: no feature cache; the images go through the frozen backbone every epoch.
    assert_eq!(report.features, None);
    assert_eq!(report.phases.len(), 1);
    assert_eq!(report.phases[0].losses.len(), 2 * 2);
    assert_eq!(report.phases[0].val_rows, 4);
    assert_eq!(report.metrics.unwrap().count, 4);

    // A validation folder with other classes is refused, naming both.
    let other = digits("aug-other", 3, 1);
    let err = FolderSource::new(&train, Some(&ImageFolder::open(&other).unwrap()))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("validation folder") && err.contains("\"2\""),
        "{err}"
    );
    for dir in [train_dir, val_dir, other] {
        std::fs::remove_dir_all(dir).ok();
    }
}

/// The head phase's features stream: the first step waits for its own batch's features only
/// (the rest follow as the first epoch asks), and the head ends where it ends when every
/// image's features come first (the reference computed here: all images through the folded
/// backbone in row order, then the head on that set).
#[test]
fn the_first_head_step_waits_for_its_own_batch_only_and_ends_as_if_all_features_came_first() {
    use tabtune::data::FeatureSet;
    use tabtune::data::source::{ImageSource, Loader};
    use tabtune::train::{HeadPhase, Progress, head::train_head_rows};

    let device = Device::flex();
    let weights = WeightSource::Path(asset("models/mobilenet_v2/model.safetensors"));
    let (model, _) = ImageModel::load(&weights, &device).unwrap();
    let data = digits("stream", 3, 5);
    let folder = ImageFolder::open(&data).unwrap();
    let (source, _) = FolderSource::new(&folder, None).unwrap();
    let recipe = Recipe {
        val_fraction: 0.2,
        head: HeadPhase {
            epochs: 3,
            batch_size: 4,
            ..Default::default()
        },
        finetune: None,
        ..Recipe::default()
    };
    let mut events = Vec::new();
    let (tuned, report) = block_on(finetune_images(
        model.clone(),
        &source,
        None,
        &recipe,
        Default::default(),
        8,
        &device,
        &mut |e| {
            events.push(e.clone());
            Control::Continue
        },
    ))
    .unwrap();
    let first_step = events
        .iter()
        .position(|e| matches!(e, Progress::Step { .. }))
        .unwrap();
    match &events[..first_step] {
        [Progress::Features { done, total, .. }] => assert_eq!((*done, *total), (4, 15)),
        other => panic!("before the first step: {other:?}"),
    }
    assert_eq!(report.features.map(|f| f.0), Some(15));

    // The reference: all 15 images' features first (row order, batches of 8).
    let pre = model.arch().preprocess();
    let folded = model.folded();
    let rows: Vec<usize> = (0..source.len()).collect();
    let mut loader = Loader::new(&source, &rows[..], 8);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    while loader.remaining() > 0 {
        let mut b = block_on(loader.batch(8, &pre, None, &mut Vec::new()));
        let pooled = folded.features(b.tensor(pre.crop as usize, &device));
        x.extend(pooled.into_data().iter::<f32>());
        y.extend(b.labels.iter().map(|&l| l as u32));
    }
    let set = FeatureSet::new(folded.feature_dim(), source.classes().to_vec(), x, y).unwrap();
    let (mut train, mut val) =
        tabtune::data::split::stratified(&source.labels(), 3, recipe.val_fraction, recipe.seed);
    train.sort_unstable();
    val.sort_unstable();
    let (head, phase, _) = block_on(train_head_rows(
        &set,
        &train,
        &val,
        &recipe.phase_spec(recipe.head.spec()),
        recipe.seed,
        &device,
        &mut |_| Control::Continue,
    ))
    .unwrap();
    assert_eq!(report.phases[0].losses.len(), phase.losses.len());
    for (a, b) in report.phases[0].losses.iter().zip(&phase.losses) {
        assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1.0),
            "losses {a} vs {b}"
        );
    }
    let streamed = burn::store::ModuleSnapshot::collect(&tuned.head(), None, None, false);
    let reference = burn::store::ModuleSnapshot::collect(&head, None, None, false);
    assert_eq!(streamed.len(), reference.len());
    for (a, b) in streamed.iter().zip(&reference) {
        let a: Vec<f32> = burn::store::bridge::to_data(a).unwrap().iter().collect();
        let b: Vec<f32> = burn::store::bridge::to_data(b).unwrap().iter().collect();
        let diff = common::max_abs_diff(&a, &b);
        assert!(diff <= 1e-5, "head weights differ by {diff}");
    }
    std::fs::remove_dir_all(data).ok();
}
