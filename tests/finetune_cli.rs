//! The CLI end to end on a small slice of the demo MNIST set (from `make assets`): phase 1 runs,
//! and bad inputs are reported by name while the run goes on (or stops with a reason).

use std::path::{Path, PathBuf};
use std::process::Command;

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
    let root = std::env::temp_dir().join(format!("tabtune-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for digit in 0..3 {
        let src = assets().join(format!("datasets/mnist/{digit}"));
        let dst = root.join(digit.to_string());
        std::fs::create_dir_all(&dst).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(&src)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files.iter().take(per_class) {
            std::fs::copy(f, dst.join(f.file_name().unwrap())).unwrap();
        }
    }
    root
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

#[test]
fn finetune_reports_accuracy_and_skips_bad_files_by_name() {
    let data = small_set("ok", 8);
    std::fs::write(
        data.join("1/corrupt.png"),
        b"\x89PNG\r\n\x1a\nthis is not a png",
    )
    .unwrap();
    std::fs::write(data.join("2/notes.txt"), b"hello").unwrap();
    let model = assets().join("models/mobilenet_v2");
    let (ok, out) = finetune_cpu(
        &model,
        &data,
        &[
            "--epochs",
            "20",
            "--val-fraction",
            "0.25",
            "--feature-batch",
            "8",
        ],
    );
    println!("{out}");
    assert!(ok, "{out}");
    assert!(out.contains("data: 25 images in 3 classes"), "{out}");
    assert!(out.contains("notes.txt: not an image file"), "{out}");
    assert!(out.contains("corrupt.png: not a readable image"), "{out}");
    assert!(out.contains("features: 24 images"), "{out}");
    // 3 digits, 6 train images each: the ImageNet features separate them well above chance.
    let acc: f64 = out
        .split("val accuracy ")
        .last()
        .and_then(|s| s.trim().trim_end_matches('%').parse().ok())
        .expect("final accuracy line");
    assert!(acc >= 60.0, "head-only validation accuracy {acc}%:\n{out}");
    std::fs::remove_dir_all(data).ok();
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
    assert!(!ok && out.contains("another architecture"), "{out}");
    std::fs::remove_dir_all(one).ok();
    std::fs::remove_dir_all(data).ok();
}
