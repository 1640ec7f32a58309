//! The two series networks against their references: humanactivity's Keras Conv1D
//! (../shared/reference/har_conv1d: Keras 3 on the package's HDF5) and RIANN's GRUs
//! (scripts/riann_reference.py: onnxruntime on the package's ONNX file), loaded from the
//! safetensors + config.json `make assets` converts, through the config-described network.
#![cfg(not(target_arch = "wasm32"))] // reads the checkpoints from assets/

use burn::prelude::*;
use burn::tensor::TensorData;
use tabtune::models::series::{Flowing, SeriesModel};
use tabtune::weights::WeightSource;

mod common;
use common::{asset, npy_f32, rel_err};

const HAR_INPUT: &[u8] = include_bytes!("fixtures/har_conv1d/har_input_normalized.npy");
const HAR_LOGITS: &[u8] = include_bytes!("fixtures/har_conv1d/har_output_logits.npy");
const RIANN_INPUT: &[u8] = include_bytes!("fixtures/riann/input.npy");
const RIANN_OUTPUT: &[u8] = include_bytes!("fixtures/riann/output.npy");

fn model(name: &str, device: &Device) -> SeriesModel {
    let dir = asset(&format!("models/{name}"));
    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let weights = WeightSource::Path(dir.join("model.safetensors"));
    SeriesModel::load(&weights, (&config, "config.json"), device).unwrap()
}

/// `[n, time, channels]` values as the network's `[n, channels, time]` input.
fn channels_first(
    values: Vec<f32>,
    n: usize,
    time: usize,
    channels: usize,
    device: &Device,
) -> Tensor<3> {
    Tensor::<3>::from_data(TensorData::new(values, [n, time, channels]), device).swap_dims(1, 2)
}

#[test]
fn har_conv1d_matches_keras() {
    let device = Device::flex();
    let m = model("har_conv1d", &device);
    let x = channels_first(npy_f32(HAR_INPUT), 4, 90, 3, &device);
    let Flowing::Window(logits) = m.net.forward(x) else {
        panic!("a window classifier")
    };
    let got = logits.into_data().try_to_vec::<f32>().unwrap();
    let rel = rel_err(&got, &npy_f32(HAR_LOGITS));
    println!("har_conv1d logits rel {rel:.4e}");
    assert!(rel <= 1e-4, "logits rel {rel:e}");
    assert_eq!(m.labels().unwrap()[5], "WALKING");
}

#[test]
fn riann_matches_onnxruntime() {
    let device = Device::flex();
    let m = model("riann", &device);
    let (mean, std) = (&m.config.input.mean, &m.config.input.std);
    let raw = npy_f32(RIANN_INPUT);
    let normalised: Vec<f32> = raw
        .iter()
        .enumerate()
        .map(|(i, v)| (v - mean[i % 7]) / std[i % 7])
        .collect();
    let x = channels_first(normalised, 2, 150, 7, &device);
    let Flowing::Steps(q) = m.net.forward(x) else {
        panic!("a per-step network")
    };
    let got = q.swap_dims(1, 2).into_data().try_to_vec::<f32>().unwrap();
    let rel = rel_err(&got, &npy_f32(RIANN_OUTPUT));
    println!("riann quaternions rel {rel:.4e}");
    assert!(rel <= 1e-4, "quaternions rel {rel:e}");
}

use tabtune::session::{Dataset, ModelFiles, ModelKind, Session};
use tabtune::train::series::SeriesPrediction;
use tabtune::train::{Control, Modality, Recipe};

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    futures_lite::future::block_on(f)
}

fn session(model: &str) -> Session {
    let mut session = Session::new(Device::flex());
    let files = ModelFiles::open(&asset(&format!("models/{model}"))).unwrap();
    assert_eq!(files.kind(), ModelKind::Series);
    session.load(files).unwrap();
    session
}

/// A phone's recording at 50 Hz: "walking" sways the accelerometer and gyroscope at 2 Hz
/// around gravity, "still" is gravity and noise; seeded.
fn recording(kind: &str, seconds: f64, seed: u64) -> String {
    let mut s = String::from("time,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z,label\n");
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut noise = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 0.2
    };
    let w = if kind == "walking" { 1.0 } else { 0.0 };
    for i in 0..(seconds * 50.0) as usize {
        let t = i as f64 / 50.0;
        let (sn, cs) = (
            (4.0 * std::f64::consts::PI * t).sin(),
            (4.0 * std::f64::consts::PI * t).cos(),
        );
        s += &format!(
            "{t:.3},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{kind}\n",
            3.0 * w * sn + noise(),
            9.81 + 4.0 * w * cs + noise(),
            1.5 * w * sn + noise(),
            1.0 * w * sn + noise(),
            0.3 * w * cs + noise(),
            0.7 * w * cs + noise()
        );
    }
    s
}

fn people(people: &[&str]) -> Vec<(String, String, Vec<u8>)> {
    let mut files = Vec::new();
    for (p, person) in people.iter().enumerate() {
        for (k, kind) in ["walking", "still"].iter().enumerate() {
            let text = recording(kind, 30.0, (p * 2 + k) as u64);
            files.push((
                format!("{person}/{kind}.csv"),
                person.to_string(),
                text.into_bytes(),
            ));
        }
    }
    files
}

#[test]
fn the_activity_model_learns_new_classes_on_six_channels_and_its_export_predicts_the_same() {
    let mut session = session("har_conv1d");
    let mut files = people(&["anna", "ben", "carl", "dora"]);
    // A recording shorter than one window is left out, named.
    let short = recording("walking", 2.0, 99);
    files.push(("dora/short.csv".into(), "dora".into(), short.into_bytes()));
    session
        .set_dataset(Dataset::series(files, None).unwrap())
        .unwrap();
    let mut recipe = Recipe::defaults(Modality::Series);
    recipe.val_fraction = 0.25; // one person of four
    recipe.head.epochs = 5;
    recipe.finetune.as_mut().unwrap().epochs = 2;
    recipe.series.channels = ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]
        .map(String::from)
        .to_vec();
    let report = block_on(session.train(&recipe, &mut |_| Control::Continue)).unwrap();
    print!("{}", report.describe("windows"));
    let m = report.metrics.as_ref().expect("a held-out person");
    assert!(m.accuracy >= 0.9, "held-out accuracy {}", m.accuracy);
    assert!(
        report
            .skipped
            .iter()
            .any(|(n, w)| n == "dora/short.csv" && w.contains("shorter than one window")),
        "{:?}",
        report.skipped
    );
    // The export reads six channels; the old three kept their weights through the head phase
    // and the new ones started at zero (checked on the head checkpoint's files elsewhere).
    let files = block_on(session.export()).unwrap();
    let config = files.iter().find(|(n, _)| n == "config.json").unwrap();
    let config: serde_json::Value = serde_json::from_slice(&config.1).unwrap();
    assert_eq!(config["input"]["channels"].as_array().unwrap().len(), 6);
    assert_eq!(
        config["output"]["labels"],
        serde_json::json!(["still", "walking"])
    );
    let probe = vec![(
        "probe.csv".to_string(),
        recording("walking", 9.0, 7).into_bytes(),
    )];
    let before = block_on(session.predict_series(probe.clone())).unwrap();
    let mut reloaded = Session::new(Device::flex());
    reloaded
        .load(ModelFiles::from_named("export", files, None).unwrap())
        .unwrap();
    let after = block_on(reloaded.predict_series(probe)).unwrap();
    let (
        SeriesPrediction::Classes {
            windows: a, labels, ..
        },
        SeriesPrediction::Classes { windows: b, .. },
    ) = (&before[0], &after[0])
    else {
        panic!("classes")
    };
    assert_eq!(a.len(), b.len());
    for ((_, p), (_, q)) in a.iter().zip(b) {
        for (x, y) in p.iter().zip(q) {
            assert!((x - y).abs() < 1e-5);
        }
    }
    let walking = labels.iter().position(|l| l == "walking").unwrap();
    assert!(a.iter().all(|(_, p)| p[walking] > 0.5), "{a:?}");
}

/// The classes of each window of `probe` predicted by `session` (probabilities by index).
fn window_probabilities(session: &mut Session, probe: &[(String, Vec<u8>)]) -> Vec<Vec<f32>> {
    match block_on(session.predict_series(probe.to_vec()))
        .unwrap()
        .remove(0)
    {
        SeriesPrediction::Classes { windows, .. } => windows.into_iter().map(|(_, p)| p).collect(),
        _ => panic!("classes"),
    }
}

/// LoRA on the activity model: an adapter on its one Linear layer before the head (`fc1`,
/// 6 -> 10,000), the new head trained whole (`modules_to_save`); the convolutions keep their
/// weights bit for bit; the merged export and the base model with PEFT's folder predict as
/// the adapted model does.
#[test]
fn lora_on_the_activity_model_adapts_its_linear_layer_and_exports_peft_s_folder() {
    let session_of = session;
    let mut session = session_of("har_conv1d");
    session
        .set_dataset(Dataset::series(people(&["anna", "ben", "carl", "dora"]), None).unwrap())
        .unwrap();
    let json = r#"{"val_fraction": 0.25, "head": {"epochs": 5},
        "finetune": {"epochs": 2, "lora": {"r": 4, "alpha": 8}}}"#;
    let plan = session.lora_plan(Some(json)).unwrap().unwrap();
    assert_eq!(
        (plan.layers, plan.adapter_params, plan.head_params),
        (1, 4 * (6 + 10_000), (10_000 + 1) * 2)
    );
    let recipe = session.check_recipe(Some(json)).unwrap();
    let report = block_on(session.train(&recipe, &mut |_| Control::Continue)).unwrap();
    print!("{}", report.describe("windows"));
    let m = report.metrics.as_ref().expect("a held-out person");
    assert!(m.accuracy >= 0.9, "held-out accuracy {}", m.accuracy);

    let files = block_on(session.export()).unwrap();
    let file = |name: &str| &files.iter().find(|(n, _)| n == name).unwrap().1;
    let config: serde_json::Value =
        serde_json::from_slice(file("adapter/adapter_config.json")).unwrap();
    assert_eq!(config["target_modules"], serde_json::json!(["fc1"]));
    assert_eq!(config["modules_to_save"], serde_json::json!(["fc2"]));
    let base = asset("models/har_conv1d");
    let original = common::tensors(&std::fs::read(base.join("model.safetensors")).unwrap());
    let merged = common::tensors(file("model.safetensors"));
    for key in [
        "conv1.weight",
        "conv1.bias",
        "conv2.weight",
        "conv2.bias",
        "fc1.bias",
    ] {
        assert_eq!(merged[key], original[key], "{key} is frozen");
    }
    assert_ne!(merged["fc1.weight"], original["fc1.weight"], "fc1 adapted");
    assert_eq!(merged["fc2.weight"].0, [2, 10_000]);
    let adapter = common::tensors(file("adapter/adapter_model.safetensors"));
    assert_eq!(adapter["base_model.model.fc1.lora_A.weight"].0, [4, 6]);
    assert_eq!(adapter["base_model.model.fc1.lora_B.weight"].0, [10_000, 4]);

    let probe = vec![(
        "probe.csv".to_string(),
        recording("walking", 9.0, 7).into_bytes(),
    )];
    let adapted = window_probabilities(&mut session, &probe);
    let mut reloaded = Session::new(Device::flex());
    reloaded
        .load(ModelFiles::from_named("export", files.clone(), None).unwrap())
        .unwrap();
    let mut onto_base = common::onto_base(&base, &files);
    for other in [&mut reloaded, &mut onto_base] {
        let p = window_probabilities(other, &probe);
        let diff = (p.iter().flatten())
            .zip(adapted.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        println!("LoRA series: probabilities differ by {diff:e}");
        assert!(diff < 1e-5, "{diff}");
    }
    // RIANN's only Linear layer is its head: no layer for an adapter, said before training.
    let err = session_of("riann")
        .lora_plan(Some(r#"{"finetune": {"lora": {}}}"#))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no layer an adapter goes on"), "{err}");
}

/// aeon's BasicMotions (`make assets`): a smart watch's accelerometer and gyroscope at 10 Hz,
/// four activities, the archive's own 40/40 split. humanactivity's network, trained on a
/// phone's three accelerometer channels at 20 Hz, learns the four new classes on six channels
/// (resampled to its rate; the gyroscope's input weights start at zero).
#[test]
fn the_activity_model_learns_basicmotions_on_its_own_test_split() {
    let root = asset("datasets/basicmotions");
    let mut files = Vec::new();
    let mut val = Vec::new();
    for split in ["train", "test"] {
        let mut names: Vec<_> = std::fs::read_dir(root.join(split))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for path in names {
            let name = format!("{split}/{}", path.file_name().unwrap().to_string_lossy());
            if split == "test" {
                val.push(name.clone());
            }
            files.push((name.clone(), name, std::fs::read(path).unwrap()));
        }
    }
    assert_eq!((files.len(), val.len()), (80, 40));
    let mut session = session("har_conv1d");
    session
        .set_dataset(Dataset::series(files, Some(val)).unwrap())
        .unwrap();
    let mut recipe = Recipe::defaults(Modality::Series);
    recipe.finetune.as_mut().unwrap().epochs = 30;
    recipe.series.channels = ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]
        .map(String::from)
        .to_vec();
    let report = block_on(session.train(&recipe, &mut |_| Control::Continue)).unwrap();
    print!("{}", report.describe("windows"));
    let m = report.metrics.as_ref().expect("the test split");
    // 10 s recordings resampled to 20 Hz: three 4.5 s windows each.
    assert_eq!(m.count, 120);
    // Four balanced classes: chance is 25%; 93.3% with seeds 0-4 (one window in 120 is 0.8).
    assert!(m.accuracy >= 0.9, "test-split accuracy {}", m.accuracy);
    assert!(
        m.per_class.iter().all(|c| c.recall >= 0.7),
        "{:?}",
        m.per_class
    );
}

#[test]
fn input_adaptation_keeps_the_old_channels_and_starts_the_new_at_zero() {
    let device = Device::flex();
    let m = model("har_conv1d", &device);
    let old = m.net.layers[0]
        .conv
        .as_ref()
        .unwrap()
        .weight
        .val()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let channels = ["gyr_x", "acc_x", "acc_y", "acc_z"].map(String::from);
    let stats = vec![(0.1, 2.0); 4];
    let m = m.with_channels(&channels, &stats, &device).unwrap();
    let new = m.net.layers[0]
        .conv
        .as_ref()
        .unwrap()
        .weight
        .val()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    // [60, 4, 60]: column 0 (gyr_x) zero, columns 1..3 the old 0..2.
    for o in 0..60 {
        for k in 0..60 {
            assert_eq!(new[(o * 4) * 60 + k], 0.0);
            for c in 0..3 {
                assert_eq!(new[(o * 4 + c + 1) * 60 + k], old[(o * 3 + c) * 60 + k]);
            }
        }
    }
    assert_eq!(m.config.input.mean[0], 0.1);
    assert_eq!(m.config.input.mean[1], 0.6628659);
    let err = model("har_conv1d", &device)
        .with_channels(
            &["acc_x".to_string(), "acc_y".to_string()],
            &[(0.0, 1.0); 2],
            &device,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"acc_z\""), "{err}");
}

#[test]
fn riann_fine_tuned_on_the_target_sensor_lowers_its_attitude_error() {
    let mut session = session("riann");
    let dir = asset("datasets/imu");
    let summary = session
        .set_dataset(
            Dataset::open(
                ModelKind::Series,
                &dir.join("train"),
                Some(&dir.join("test")),
                &Default::default(),
            )
            .unwrap(),
        )
        .unwrap();
    assert_eq!(summary.classes.len(), 0);
    let mut recipe = Recipe::defaults(Modality::Series);
    recipe.head.epochs = 2;
    recipe.head.batch_size = 32;
    recipe.finetune = None;
    recipe.series.window_s = 2.0;
    recipe.series.stride_s = 0.5;
    recipe.series.warmup_s = 0.5;
    let report = block_on(session.train(&recipe, &mut |_| Control::Continue)).unwrap();
    print!("{}", report.describe("windows"));
    let before = report
        .regression_before
        .as_ref()
        .unwrap()
        .attitude
        .as_ref()
        .unwrap()
        .mean;
    let after = report
        .regression
        .as_ref()
        .unwrap()
        .attitude
        .as_ref()
        .unwrap()
        .mean;
    // The pre-trained network on this sensor: about 3.2 degrees (onnxruntime says the same).
    assert!((2.5..4.0).contains(&before), "before {before}");
    assert!(after < before * 0.8, "attitude error {before} -> {after}");
}

/// y = 2a - b + 1 at each sample, read from the window's last sample: a linear network over the
/// flattened window learns it exactly; MSE and Huber both get the error far under the spread.
#[test]
fn a_regression_head_learns_a_linear_target_with_mse_and_huber() {
    use tabtune::data::series::{Recordings, Wanted};
    use tabtune::models::series::{SeriesConfig, SeriesModel, SeriesNet};
    let device = Device::flex();
    for loss in ["mse", "huber"] {
        let config = SeriesConfig::parse(
            &serde_json::json!({
                "architecture": "series",
                "input": {"channels": ["a", "b"], "rate_hz": 10.0, "window": 10,
                          "mean": [0.0, 0.0], "std": [1.0, 1.0]},
                "layers": [{"type": "flatten"},
                           {"type": "linear", "name": "out", "in_features": 20, "out_features": 1}],
                "output": {"kind": "values", "names": ["y"], "mean": [1.0], "std": [2.0], "loss": loss}
            })
            .to_string(),
            "config.json",
        )
        .unwrap();
        let model = SeriesModel {
            net: SeriesNet::new(&config, 3, &device),
            config,
        };
        let mut files = Vec::new();
        for (g, person) in ["p1", "p2", "p3", "p4"].iter().enumerate() {
            let mut text = String::from("time,a,b,y\n");
            for i in 0..400 {
                let t = i as f64 / 10.0;
                let a = (t * 0.7 + g as f64).sin();
                let b = (t * 1.3 + 2.0 * g as f64).cos();
                text += &format!("{t:.1},{a:.5},{b:.5},{:.5}\n", 2.0 * a - b + 1.0);
            }
            files.push((
                format!("{person}.csv"),
                person.to_string(),
                text.into_bytes(),
            ));
        }
        let wanted = Wanted {
            channels: vec!["a".into(), "b".into()],
            label_column: None,
            targets: vec!["y".into()],
            rate_hz: Some(10.0),
            declared_rate_hz: 0.0,
            max_gap_s: 0.5,
        };
        let data = Recordings::read(files, &wanted).unwrap();
        let mut recipe = Recipe::defaults(Modality::Series);
        recipe.val_fraction = 0.25;
        recipe.head.epochs = 60;
        recipe.head.lr = 0.02;
        recipe.head.batch_size = 16;
        recipe.finetune = None;
        recipe.series.stride_s = 0.2;
        let (_, report) = block_on(tabtune::train::finetune_series(
            model,
            &data,
            None,
            &recipe,
            Default::default(),
            &device,
            &mut |_| Control::Continue,
        ))
        .unwrap();
        let before = report.regression_before.as_ref().unwrap().rmse[0];
        let after = report.regression.as_ref().unwrap().rmse[0];
        println!("{loss}: rmse {before:.4} -> {after:.4}");
        // y spreads over about 1.6 (std); a random linear layer is off by more than that.
        assert!(before > 0.5, "{loss}: before {before}");
        assert!(after < 0.1, "{loss}: rmse {before} -> {after}");
        // The predicted-vs-true pairs the page plots: as many as scored (up to 400), each
        // predicted value within the error of its true one.
        let m = report.regression.as_ref().unwrap();
        assert_eq!(m.points.len(), 1);
        assert_eq!(m.points[0].len(), m.scored.min(400));
        let worst = m.points[0]
            .iter()
            .map(|[t, p]| (t - p).abs())
            .fold(0.0, f32::max);
        assert!(worst < 0.5, "{loss}: a plotted pair off by {worst}");
    }
}
