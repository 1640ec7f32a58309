//! The CLI end to end on a small slice of the demo MNIST set (from `make assets`): phase 1 runs,
//! and bad inputs are reported by name while the run goes on (or stops with a reason).
#![cfg(not(target_arch = "wasm32"))] // the file system and the CLI binary are native

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

fn assets() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    assert!(
        path.join("datasets/mnist").exists(),
        "run `make assets` first"
    );
    path
}

/// `per_class` digits of classes 0..3 copied into a fresh folder.
fn small_set(name: &str, per_class: usize) -> PathBuf {
    common::mnist_subset(&format!("cli-{name}"), 3, per_class)
}

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tabtune"))
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// The accuracy on the first "accuracy X% (" line of a metrics table.
fn table_accuracy(out: &str) -> f64 {
    out.lines()
        .find_map(|l| l.strip_prefix("accuracy ")?.split('%').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no metrics table in:\n{out}"))
}

#[test]
fn finetune_two_phases_then_eval_predict_and_export_with_bad_files_named() {
    let data = small_set("ok", 8);
    std::fs::write(
        data.join("1/corrupt.png"),
        b"\x89PNG\r\n\x1a\nthis is not a png",
    )
    .unwrap();
    std::fs::write(data.join("2/notes.txt"), b"hello").unwrap();
    let model = assets().join("models/mobilenet_v2");
    let out_dir = data.with_extension("out");
    let (ok, out) = finetune_cpu(
        &model,
        &data,
        &[
            "--epochs",
            "20",
            "--finetune-epochs",
            "1",
            "--unfreeze",
            "3",
            "--val-fraction",
            "0.25",
            "--feature-batch",
            "8",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    println!("{out}");
    assert!(ok, "{out}");
    assert!(out.contains("data: 25 images in 3 classes"), "{out}");
    assert!(out.contains("notes.txt: not an image file"), "{out}");
    assert!(out.contains("corrupt.png: not a readable image"), "{out}");
    assert!(out.contains("features: 24 images"), "{out}");
    assert!(
        out.contains("head epoch 20:") && out.contains("finetune epoch 1:"),
        "{out}"
    );
    // 3 digits, 6 train images each: the ImageNet features separate them well above chance.
    let acc = table_accuracy(&out);
    assert!(acc >= 60.0, "validation accuracy {acc}%:\n{out}");
    for file in ["model.safetensors", "config.json", "report.json"] {
        assert!(out_dir.join(file).exists(), "{file} missing");
    }
    let config = std::fs::read_to_string(out_dir.join("config.json")).unwrap();
    assert!(
        config.contains("\"id2label\"") && config.contains("\"num_labels\": 3"),
        "{config}"
    );

    // The exported model evaluates to the same accuracy on the same validation images...
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap())
            .unwrap();
    let reported = report["report"]["metrics"]["accuracy"].as_f64().unwrap();
    assert!((reported * 100.0 - acc).abs() < 0.01, "{reported} vs {acc}");
    // The model folder holds nothing from the data: no file named, left out or misclassified
    // (the terminal said which were left out).
    let text = report.to_string();
    assert_eq!(report["report"]["examples_left_out"], true, "{text}");
    assert!(
        !text.contains(".png") && !text.contains("notes.txt"),
        "{text}"
    );
    // ... and on a folder of its classes.
    let (ok, eval) = run(&[
        "eval",
        "--device",
        "cpu",
        "--model",
        out_dir.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(ok, "{eval}");
    assert!(eval.contains("corrupt.png: not a readable image"), "{eval}");
    let all = table_accuracy(&eval);
    assert!(all >= 60.0, "{eval}");

    let digit = std::fs::read_dir(data.join("2"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .unwrap();
    let (ok, predicted) = run(&[
        "predict",
        "--device",
        "cpu",
        "--model",
        out_dir.to_str().unwrap(),
        "--top",
        "2",
        digit.to_str().unwrap(),
        data.join("2/notes.txt").to_str().unwrap(),
    ]);
    assert!(ok, "{predicted}");
    let line = predicted
        .lines()
        .find(|l| l.starts_with(digit.to_str().unwrap()))
        .unwrap();
    assert_eq!(line.matches('%').count(), 2, "{line}");
    assert!(predicted.contains("notes.txt: skipped"), "{predicted}");
    std::fs::remove_dir_all(data).ok();
    std::fs::remove_dir_all(out_dir).ok();
}

/// `tabtune finetune` on the CPU, with `extra` flags after the default ones.
fn finetune_cpu(model: &Path, data: &Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec![
        "finetune",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--device",
        "cpu",
    ];
    args.extend_from_slice(extra);
    if !extra.contains(&"--out") {
        args.extend_from_slice(&["--out", "target/tabtune-test-unused-out"]);
    }
    run(&args)
}

#[test]
fn single_class_empty_class_and_wrong_model_stop_with_a_reason() {
    let model = assets().join("models/mobilenet_v2");
    let data = small_set("bad", 2);
    std::fs::create_dir_all(data.join("3")).unwrap();
    let (ok, out) = finetune_cpu(&model, &data, &[]);
    assert!(!ok && out.contains("class folder has no images"), "{out}");
    std::fs::remove_dir_all(&data).ok();

    let one = small_set("one", 2);
    std::fs::remove_dir_all(one.join("1")).unwrap();
    std::fs::remove_dir_all(one.join("2")).unwrap();
    let (ok, out) = finetune_cpu(&model, &one, &[]);
    assert!(!ok && out.contains("at least 2"), "{out}");

    let minilm = assets().join("models/all-MiniLM-L6-v2/model.safetensors");
    let data = small_set("wrong-model", 2);
    let (ok, out) = finetune_cpu(&minilm, &data, &[]);
    assert!(
        !ok && out.contains("not a known image architecture") && out.contains("model.safetensors"),
        "{out}"
    );

    // A .pth cut short (an interrupted download) is named, not a panic.
    let pth = assets().join("models/mobilenet_v2/mobilenet_v2-b0353104.pth");
    let bytes = std::fs::read(&pth).unwrap();
    let cut = data.with_extension("truncated.pth");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, out) = finetune_cpu(&cut, &data, &[]);
    assert!(!ok && out.contains("truncated.pth"), "{out}");
    assert!(!out.contains("panicked"), "{out}");
    // ... and so is a zip checkpoint cut short.
    let bytes = std::fs::read(assets().join("models/mobilenet_v2/mobilenet_v2-zip.pth")).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, out) = finetune_cpu(&cut, &data, &[]);
    assert!(!ok && out.contains("truncated.pth"), "{out}");
    assert!(!out.contains("panicked"), "{out}");
    std::fs::remove_file(cut).ok();
    std::fs::remove_dir_all(one).ok();
    std::fs::remove_dir_all(data).ok();
}

/// A small text table written to a fresh file: `per_class` rotten-tomatoes snippets per class
/// (quoted as RFC 4180 asks), then `extra` raw lines.
fn text_table(name: &str, per_class: usize, extra: &[u8]) -> PathBuf {
    let csv = std::fs::read_to_string(assets().join("datasets/rotten_tomatoes.csv")).unwrap();
    let set = tabtune::data::TextSet::parse(csv.as_bytes(), "rt.csv", &Default::default())
        .unwrap()
        .take_per_class(per_class);
    let mut out = b"review,sentiment\n".to_vec();
    for (text, &label) in set.texts.iter().zip(&set.labels) {
        let text = text.replace('"', "\"\"");
        out.extend(format!("\"{text}\",{}\n", set.classes[label as usize]).as_bytes());
    }
    out.extend_from_slice(extra);
    let path = std::env::temp_dir().join(format!("tabtune-cli-{name}-{}.csv", std::process::id()));
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn text_finetune_predict_eval_and_bad_tables_named() {
    let model = assets().join("models/all-MiniLM-L6-v2");
    // Bad rows are named by line and left out; the run goes on.
    let data = text_table("text-ok", 12, b"\"\",fresh\ncaf\xe9 au lait,rotten\n");
    let out_dir = data.with_extension("out");
    let (ok, out) = finetune_cpu(
        &model,
        &data,
        &[
            "--epochs",
            "10",
            "--finetune-epochs",
            "1",
            "--unfreeze",
            "1",
            "--max-length",
            "48",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}");
    let name = data.display().to_string();
    assert!(out.contains(&format!("{name}:26: empty text")), "{out}");
    assert!(out.contains(&format!("{name}:27: not UTF-8")), "{out}");
    assert!(out.contains("data: 24 texts in 2 classes"), "{out}");
    assert!(out.contains("finetune: 20 train / 4 val texts"), "{out}");
    for file in [
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "report.json",
    ] {
        assert!(out_dir.join(file).exists(), "{file} missing:\n{out}");
    }
    let (ok, predicted) = run(&[
        "predict",
        "--device",
        "cpu",
        "--model",
        out_dir.to_str().unwrap(),
        "--top",
        "2",
        "a gorgeous, witty, seductive movie.",
    ]);
    assert!(ok, "{predicted}");
    assert!(
        predicted.contains("\"a gorgeous, witty, seductive movie.\": "),
        "{predicted}"
    );
    assert!(predicted.contains("max length 48"), "{predicted}");
    let (ok, evaluated) = run(&[
        "eval",
        "--device",
        "cpu",
        "--model",
        out_dir.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(ok, "{evaluated}");
    // Every readable row of the table, scored with the exported labels.
    assert!(evaluated.contains("(24 rows)"), "{evaluated}");
    assert!((0.0..=100.0).contains(&table_accuracy(&evaluated)));

    // Whole-file problems stop the run, naming file and line or column.
    let broken = text_table("text-quote", 3, b"\"never closed,fresh\nmore,rotten\n");
    let missing = text_table("text-column", 3, b"");
    for (file, columns, expected) in [
        (&broken, vec![], format!("{}:8", broken.display())),
        (
            &missing,
            vec!["--label-column", "stars"],
            "no label column \"stars\"".to_string(),
        ),
    ] {
        let (ok, out) = finetune_cpu(&model, file, &columns);
        assert!(
            !ok && out.contains(&expected),
            "expected {expected:?} in:\n{out}"
        );
    }
    for path in [&data, &broken, &missing] {
        std::fs::remove_file(path).unwrap();
    }
    std::fs::remove_dir_all(&out_dir).unwrap();
}

#[test]
fn a_killed_run_resumes_from_its_checkpoint_to_the_uninterrupted_weights() {
    use std::io::{BufRead, BufReader};
    let data = small_set("kill", 6);
    let model = assets().join("models/mobilenet_v2");
    let args = |out: &Path| -> Vec<String> {
        [
            "finetune",
            "--device",
            "cpu",
            "--epochs",
            "2",
            "--finetune-epochs",
            "3",
            "--unfreeze",
            "2",
            "--set",
            "head.batch_size=8",
            "--set",
            "finetune.batch_size=4",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([
            "--model".into(),
            model.display().to_string(),
            "--data".into(),
            data.display().to_string(),
        ])
        .chain(["--out".into(), out.display().to_string()])
        .collect()
    };
    let whole = data.with_extension("whole");
    let (ok, out) = run(&args(&whole).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{out}");
    assert!(
        !whole.join("checkpoint").exists(),
        "a finished run leaves no checkpoint"
    );

    // Killed in epoch 2 of phase 2's 3.
    let killed = data.with_extension("killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tabtune"))
        .args(args(&killed))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        // The checkpoint after epoch 1 is written: the run is in epoch 2.
        let in_epoch_2 = line.starts_with("checkpoint after finetune epoch 1");
        seen.push(line);
        if in_epoch_2 {
            child.kill().unwrap();
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the run finished before it could be killed:\n{}",
        seen.join("\n")
    );
    assert!(
        seen.iter().any(|l| l.starts_with("checkpoint after head")),
        "{}",
        seen.join("\n")
    );
    assert!(!killed.join("model.safetensors").exists());

    let mut resume = args(&killed);
    resume.extend(["--resume".into(), killed.display().to_string()]);
    let (ok, out) = run(&resume.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{out}");
    assert!(out.contains("resuming from the checkpoint in"), "{out}");
    assert!(
        !out.contains("head epoch") && !out.contains("finetune epoch 1:"),
        "the head phase or epoch 1 ran again:\n{out}"
    );
    assert!(out.contains("finetune epoch 2:"), "{out}");
    let report = std::fs::read_to_string(killed.join("report.json")).unwrap();
    assert!(
        report.contains("\"resumed_after\": \"finetune epoch 1\""),
        "{report}"
    );
    let diff = common::max_diff(
        &std::fs::read(killed.join("model.safetensors")).unwrap(),
        &std::fs::read(whole.join("model.safetensors")).unwrap(),
    );
    println!("killed and resumed vs uninterrupted: weights differ by at most {diff:e}");
    assert!(diff <= 1e-6, "weights differ by {diff}");
    for dir in [data, whole, killed] {
        std::fs::remove_dir_all(dir).ok();
    }
}

/// `predict --json` on a regression model (RIANN: a quaternion at every step) writes each
/// file's values under the output names, as the terminal prints them.
#[test]
fn predict_json_writes_a_regression_models_values_at_every_step() {
    let model = assets().join("models/riann");
    let source = std::fs::read_to_string(assets().join("datasets/imu/test/rec01.csv")).unwrap();
    // Two seconds at the set's 100 Hz; RIANN reads 200 Hz, so the core resamples.
    let dir = std::env::temp_dir().join(format!("tabtune-cli-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("turn.csv");
    std::fs::write(
        &csv,
        source.lines().take(201).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let json = dir.join("values.json");
    let (ok, out) = run(&[
        "predict",
        "--device",
        "cpu",
        "--model",
        model.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        csv.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let rows: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert!(
        row["input"].as_str().unwrap().ends_with("turn.csv"),
        "{row}"
    );
    assert_eq!(row["names"], serde_json::json!(["qw", "qx", "qy", "qz"]));
    assert!(
        (row["step_s"].as_f64().unwrap() - 0.005).abs() < 1e-9,
        "{}",
        row["step_s"]
    );
    let values = row["values"].as_array().unwrap();
    // The terminal's first line gives the count; its rows are the JSON's, to 4 decimals.
    let count = format!("{} rows, 0.005 s apart (qw, qx, qy, qz)", values.len());
    assert!(out.contains(&count), "{count} not in:\n{out}");
    assert!(
        (399..=401).contains(&values.len()),
        "{} steps",
        values.len()
    );
    let q: Vec<Vec<f64>> = values
        .iter()
        .map(|v| {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect();
    for (i, v) in q.iter().enumerate() {
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "step {i}: |q| = {norm}");
    }
    let first = format!(
        "  0.00 s: {}",
        q[0].iter()
            .map(|v| format!("{v:.4}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert!(out.contains(&first), "{first} not in:\n{out}");
    // The estimate moves as the sensor turns.
    let moved = q[0]
        .iter()
        .zip(&q[q.len() - 1])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        moved > 1e-3,
        "the quaternion did not move: {:?} -> {:?}",
        q[0],
        q[q.len() - 1]
    );
    std::fs::remove_dir_all(&dir).ok();
}
