//! The bad-input matrix: malformed weights, images, tables and recipes, one row each, with the
//! error text each must show (or, for inputs that are only unusual, what they must give), and
//! after every row a check that the session is still usable: its model and dataset are there,
//! and the next good input works. tests/e2e/bad_input.test.mjs feeds what reaches the page
//! through the API in Chromium. The files tabtune cannot make itself come from
//! scripts/bad_inputs.py (tests/fixtures/bad).
#![cfg(not(target_arch = "wasm32"))] // folders and files on disk

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::prelude::Device;
use futures_lite::future::block_on;
use image::RgbImage;
use tabtune::data::Columns;
use tabtune::data::image::decode;
use tabtune::data::{ImageFolder, TextSet, TextTokenizer};
use tabtune::session::{Dataset, ModelFiles, ModelKind, Session};
use tabtune::train::{Control, Modality, Recipe};

mod common;

type Outcome = Result<(), String>;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bad")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `result` failed with a message containing every one of `want`.
fn fails<T>(result: tabtune::Result<T>, want: &[&str]) -> Outcome {
    match result {
        Ok(_) => Err(format!("accepted; expected an error with {want:?}")),
        Err(err) => {
            let text = err.to_string();
            match want.iter().find(|w| !text.contains(*w)) {
                None => Ok(()),
                Some(missing) => Err(format!("error {text:?} does not say {missing:?}")),
            }
        }
    }
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Outcome {
    if ok { Ok(()) } else { Err(what()) }
}

// ---- weights -------------------------------------------------------------------------------

/// A safetensors file as (header, data) with its header as JSON.
struct St {
    header: serde_json::Map<String, serde_json::Value>,
    data: Vec<u8>,
}

impl St {
    fn parse(bytes: &[u8]) -> Self {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        Self {
            header,
            data: bytes[8 + n..].to_vec(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).unwrap();
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend(header);
        out.extend(&self.data);
        out
    }

    fn tensor(&mut self, name: &str) -> &mut serde_json::Map<String, serde_json::Value> {
        self.header[name].as_object_mut().unwrap()
    }

    /// Every F32 tensor as `dtype` (2 bytes a value), `encode` turning each value.
    fn converted(&self, dtype: &str, encode: &dyn Fn(f32) -> [u8; 2]) -> Vec<u8> {
        let mut header = self.header.clone();
        let mut data = Vec::new();
        let mut names: Vec<(usize, String)> = header
            .iter()
            .filter(|(k, _)| *k != "__metadata__")
            .map(|(k, v)| (v["data_offsets"][0].as_u64().unwrap() as usize, k.clone()))
            .collect();
        names.sort();
        for (_, name) in names {
            let t = header[&name].as_object_mut().unwrap();
            let (a, b) = (
                t["data_offsets"][0].as_u64().unwrap() as usize,
                t["data_offsets"][1].as_u64().unwrap() as usize,
            );
            let start = data.len();
            if t["dtype"] == "F32" {
                for v in self.data[a..b].chunks_exact(4) {
                    data.extend(encode(f32::from_le_bytes(v.try_into().unwrap())));
                }
                t["dtype"] = dtype.into();
            } else {
                data.extend(&self.data[a..b]);
            }
            t["data_offsets"] = serde_json::json!([start, data.len()]);
        }
        St { header, data }.bytes()
    }
}

fn mobilenet() -> Vec<u8> {
    std::fs::read(common::asset("models/mobilenet_v2/model.safetensors")).unwrap()
}

/// Files named as the browser sends them: model.safetensors (or `name`) alone.
fn load_named(s: &mut Session, files: Vec<(&str, Vec<u8>)>) -> tabtune::Result<()> {
    let files = files.into_iter().map(|(n, b)| (n.to_string(), b)).collect();
    let files = ModelFiles::from_named("bad", files, None)?;
    s.load(files)?;
    // What a run does with the weights first.
    s.warm_up()?;
    Ok(())
}

fn weights_cases() -> Vec<(&'static str, Box<dyn Fn(&mut Session) -> Outcome>)> {
    vec![
        (
            "0-byte model.safetensors",
            Box::new(|s| {
                fails(
                    load_named(s, vec![("model.safetensors", vec![])]),
                    &["bad/model.safetensors", "empty"],
                )
            }),
        ),
        (
            "safetensors header length past the end of the file",
            Box::new(|s| {
                let mut b = mobilenet();
                let len = b.len() as u64;
                b[..8].copy_from_slice(&(len + 100).to_le_bytes());
                fails(
                    load_named(s, vec![("model.safetensors", b)]),
                    &["bad/model.safetensors", "header"],
                )
            }),
        ),
        (
            "safetensors header that is not JSON",
            Box::new(|s| {
                let mut b = mobilenet();
                b[8..16].copy_from_slice(b"{nonsens");
                fails(
                    load_named(s, vec![("model.safetensors", b)]),
                    &["bad/model.safetensors"],
                )
            }),
        ),
        (
            "overlapping data offsets",
            Box::new(|s| {
                let mut st = St::parse(&mobilenet());
                let offsets = st.header["features.0.0.weight"]["data_offsets"].clone();
                st.tensor("features.0.1.weight")["data_offsets"] = offsets;
                fails(
                    load_named(s, vec![("model.safetensors", st.bytes())]),
                    &["bad/model.safetensors"],
                )
            }),
        ),
        (
            "data offsets past the end of the data",
            Box::new(|s| {
                let mut st = St::parse(&mobilenet());
                let end = st.data.len();
                st.tensor("classifier.1.bias")["data_offsets"] =
                    serde_json::json!([end, end + 4000]);
                fails(
                    load_named(s, vec![("model.safetensors", st.bytes())]),
                    &["bad/model.safetensors"],
                )
            }),
        ),
        (
            "an I64 tensor where F32 is expected",
            Box::new(|s| {
                let mut st = St::parse(&mobilenet());
                // 1000 F32 values are 500 I64 ones: the same bytes, another dtype and shape.
                let t = st.tensor("classifier.1.bias");
                t["dtype"] = "I64".into();
                t["shape"] = serde_json::json!([500]);
                fails(
                    load_named(s, vec![("model.safetensors", st.bytes())]),
                    &["classifier.1.bias"],
                )
            }),
        ),
        (
            "one misshaped tensor in a right-architecture file",
            Box::new(|s| {
                let mut st = St::parse(&mobilenet());
                st.tensor("classifier.1.weight")["shape"] = serde_json::json!([1280, 1000]);
                fails(
                    load_named(s, vec![("model.safetensors", st.bytes())]),
                    &["classifier.1.weight", "1280", "1000"],
                )
            }),
        ),
        (
            "F16 checkpoint: converted to F32, trains",
            Box::new(|s| {
                let b = St::parse(&mobilenet())
                    .converted("F16", &|v| half::f16::from_f32(v).to_le_bytes());
                load_named(s, vec![("model.safetensors", b)]).map_err(|e| e.to_string())?;
                trains(s)
            }),
        ),
        (
            "BF16 checkpoint: converted to F32, trains",
            Box::new(|s| {
                let b = St::parse(&mobilenet())
                    .converted("BF16", &|v| half::bf16::from_f32(v).to_le_bytes());
                load_named(s, vec![("model.safetensors", b)]).map_err(|e| e.to_string())?;
                trains(s)
            }),
        ),
        (
            "a zip .pth written by torch.save: the same weights as its safetensors",
            Box::new(|s| {
                let from = |name: &str, bytes: Vec<u8>| -> Result<Vec<u8>, String> {
                    let dir = folder(&[
                        (name, bytes),
                        (
                            "config.json",
                            std::fs::read(common::asset("models/har_conv1d/config.json")).unwrap(),
                        ),
                    ]);
                    let mut s = Session::new(Device::flex());
                    s.load(ModelFiles::open(&dir).map_err(|e| e.to_string())?)
                        .map_err(|e| e.to_string())?;
                    let files = block_on(s.export()).map_err(|e| e.to_string())?;
                    std::fs::remove_dir_all(dir).ok();
                    Ok(files
                        .into_iter()
                        .find(|(n, _)| n == "model.safetensors")
                        .unwrap()
                        .1)
                };
                let pth = from("model.pth", fixture("har_conv1d.pth"))?;
                let st = from(
                    "model.safetensors",
                    std::fs::read(common::asset("models/har_conv1d/model.safetensors")).unwrap(),
                )?;
                let diff = common::max_diff(&pth, &st);
                check(diff == 0.0, || {
                    format!("the .pth's weights differ by {diff}")
                })?;
                // The session this row was given is untouched by the two above.
                check(s.kind() == ModelKind::Image, || {
                    "the session's model changed".into()
                })
            }),
        ),
        (
            "a pickle that would run code: refused, never run",
            Box::new(|s| {
                let marker =
                    std::env::temp_dir().join(format!("tabtune-pwned-{}", std::process::id()));
                let _ = std::fs::remove_file(&marker);
                let command = format!("touch {}", marker.display());
                // protocol 2: os.system(command)
                let mut pickle = b"\x80\x02cos\nsystem\nq\x00X".to_vec();
                pickle.extend((command.len() as u32).to_le_bytes());
                pickle.extend(command.as_bytes());
                pickle.extend(b"\x85q\x01Rq\x02.");
                // From a path (the command line reads .pth files), as torch.save's legacy format
                // and inside its zip format.
                let legacy = [
                    b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.".as_slice(),
                    &pickle,
                ]
                .concat();
                let zipped =
                    tabtune::weights::zip_files(&[("archive/data.pkl".into(), pickle.clone())])
                        .unwrap();
                for (kind, bytes) in [("legacy", legacy), ("zip", zipped.clone())] {
                    let dir = folder(&[("model.pth", bytes)]);
                    let result = ModelFiles::open(&dir).and_then(|files| s.load(files).map(|_| ()));
                    std::fs::remove_dir_all(&dir).ok();
                    check(!marker.exists(), || format!("the {kind} pickle's code ran"))?;
                    if let Err(err) = &result {
                        println!("  {kind}: {err}");
                    }
                    fails(result, &["model.pth"])?;
                }
                // And in the browser, bytes: refused before any reading, with what to do.
                fails(
                    load_named(s, vec![("model.pth", zipped)]),
                    &["bad/model.pth", "tabtune export"],
                )
            }),
        ),
        (
            "config.json that is not JSON",
            Box::new(|s| {
                fails(
                    load_named(
                        s,
                        vec![
                            ("model.safetensors", mobilenet()),
                            ("config.json", b"{\"num_labels\": ".to_vec()),
                        ],
                    ),
                    &["config.json"],
                )
            }),
        ),
        (
            "weights of no architecture tabtune knows",
            Box::new(|s| {
                let mut st = St::parse(&mobilenet());
                let keys: Vec<String> = st
                    .header
                    .keys()
                    .filter(|k| *k != "__metadata__")
                    .cloned()
                    .collect();
                for k in keys {
                    let v = st.header.remove(&k).unwrap();
                    st.header.insert(format!("encoder.mystery.{k}"), v);
                }
                fails(
                    load_named(s, vec![("model.safetensors", st.bytes())]),
                    &["bad/model.safetensors"],
                )
            }),
        ),
        (
            "no weights among the files",
            Box::new(|s| {
                fails(
                    load_named(s, vec![("notes.txt", b"hello".to_vec())]),
                    &["no weights"],
                )
            }),
        ),
    ]
}

/// A fresh folder holding `files`.
fn folder(files: &[(&str, Vec<u8>)]) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("tabtune-bad-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    dir
}

/// One head epoch on the session's dataset trains (a finite, reported loss).
fn trains(s: &mut Session) -> Outcome {
    let recipe =
        Recipe::from_json(r#"{"head": {"epochs": 1, "batch_size": 4}, "finetune": null}"#).unwrap();
    let report =
        block_on(s.train(&recipe, &mut |_| Control::Continue)).map_err(|e| e.to_string())?;
    let losses = &report.phases[0].losses;
    check(
        !losses.is_empty() && losses.iter().all(|l| l.is_finite()),
        || format!("losses {losses:?}"),
    )
}

// ---- images --------------------------------------------------------------------------------

/// The colour at (x, y) is within 40 of `want` on every channel.
fn near(image: &RgbImage, x: u32, y: u32, want: [u8; 3]) -> Outcome {
    let p = image.get_pixel(x, y).0;
    check(
        p.iter()
            .zip(want)
            .all(|(&a, b)| (a as i32 - b as i32).abs() <= 40),
        || format!("pixel ({x}, {y}) is {p:?}, expected about {want:?}"),
    )
}

/// The fixtures' quadrants: red, green / blue, white on 64 x 48.
fn quadrants(image: &RgbImage) -> Outcome {
    check(image.dimensions() == (64, 48), || {
        format!("{:?}", image.dimensions())
    })?;
    near(image, 8, 8, [220, 30, 30])?;
    near(image, 56, 8, [30, 200, 30])?;
    near(image, 8, 40, [30, 30, 220])?;
    near(image, 56, 40, [240, 240, 240])
}

fn decodes_to_quadrants(file: &'static str) -> Box<dyn Fn(&mut Session) -> Outcome> {
    Box::new(move |_| quadrants(&decode(&fixture(file), file).map_err(|e| e.to_string())?))
}

fn image_cases() -> Vec<(&'static str, Box<dyn Fn(&mut Session) -> Outcome>)> {
    vec![
        (
            "the same picture in training and validation files: warned, naming both",
            Box::new(|_| {
                let train = common::mnist_subset("dup-train", 2, 4);
                let val = common::mnist_subset("dup-val", 2, 1);
                // Validation's digit 0 is training's first digit 0 (both folders take the first
                // files), and its digit 1 a copy of a training image under another name.
                let copied = std::fs::read_dir(train.join("1"))
                    .unwrap()
                    .next()
                    .unwrap()
                    .unwrap()
                    .path();
                for f in std::fs::read_dir(val.join("1")).unwrap() {
                    std::fs::remove_file(f.unwrap().path()).unwrap();
                }
                std::fs::copy(&copied, val.join("1").join("copy.png")).unwrap();
                let dataset =
                    Dataset::open(ModelKind::Image, &train, Some(&val), &Columns::default())
                        .map_err(|e| e.to_string())?;
                let mut s = session_with(dataset);
                let recipe = Recipe::from_json(
                    r#"{"head": {"epochs": 1, "batch_size": 4}, "finetune": null}"#,
                )
                .unwrap();
                let mut warnings = Vec::new();
                block_on(s.train(&recipe, &mut |e| {
                    if let tabtune::session::Event::Warning(w) = e {
                        warnings.push(w.to_string());
                    }
                    Control::Continue
                }))
                .map_err(|e| e.to_string())?;
                std::fs::remove_dir_all(&train).ok();
                std::fs::remove_dir_all(&val).ok();
                let name = copied.file_name().unwrap().to_string_lossy().into_owned();
                check(
                    warnings.iter().any(|w| {
                        w.starts_with("2 validation image(s) are the same pictures")
                            && w.contains("copy.png")
                            && w.contains(&name)
                    }),
                    || format!("warnings: {warnings:?}"),
                )
            }),
        ),
        ("baseline JPEG", decodes_to_quadrants("baseline.jpg")),
        ("progressive JPEG", decodes_to_quadrants("progressive.jpg")),
        ("CMYK JPEG", decodes_to_quadrants("cmyk.jpg")),
        ("16-bit PNG", decodes_to_quadrants("sixteen-bit.png")),
        ("WebP", decodes_to_quadrants("image.webp")),
        ("BMP", decodes_to_quadrants("image.bmp")),
        (
            "EXIF-rotated JPEG, oriented as a viewer shows it",
            decodes_to_quadrants("exif-rotated.jpg"),
        ),
        (
            "animated GIF: its first frame",
            Box::new(|_| {
                let image =
                    decode(&fixture("animated.gif"), "animated.gif").map_err(|e| e.to_string())?;
                near(&image, 16, 16, [255, 0, 0])
            }),
        ),
        (
            "30,000 x 30,000 PNG: refused by its header, before decoding",
            Box::new(|_| {
                let start = std::time::Instant::now();
                fails(
                    decode(&fixture("bomb.png"), "bomb.png"),
                    &["bomb.png", "30000x30000", "900 megapixels"],
                )?;
                let ms = start.elapsed().as_millis();
                check(ms < 1000, || format!("took {ms} ms: it was decoded"))
            }),
        ),
        (
            "0-byte image file",
            Box::new(|_| fails(decode(&[], "empty.png"), &["empty.png", "empty file"])),
        ),
        (
            "a text file named .png",
            Box::new(|_| {
                fails(
                    decode(b"label,text\ncat,meow\n", "notes.png"),
                    &["notes.png", "not a readable image"],
                )
            }),
        ),
        (
            "a folder of all of these, nested subfolders included: the bad ones named, the rest trained on",
            Box::new(|s| {
                let root = common::mnist_subset("bad-images", 2, 4);
                let nested = root.join("1").join("more").join("deeper");
                std::fs::create_dir_all(&nested).unwrap();
                for f in [
                    "baseline.jpg",
                    "progressive.jpg",
                    "cmyk.jpg",
                    "sixteen-bit.png",
                    "image.webp",
                    "image.bmp",
                ] {
                    std::fs::write(root.join("0").join(f), fixture(f)).unwrap();
                }
                for f in ["exif-rotated.jpg", "animated.gif", "bomb.png"] {
                    std::fs::write(nested.join(f), fixture(f)).unwrap();
                }
                std::fs::write(root.join("1").join("empty.png"), b"").unwrap();
                std::fs::write(root.join("1").join("notes.png"), b"meow").unwrap();
                let folder = ImageFolder::open(&root).map_err(|e| e.to_string())?;
                check(folder.items.len() == 4 + 6 + 4 + 3 + 2, || {
                    format!("{} images listed", folder.items.len())
                })?;
                let dataset = Dataset::open(ModelKind::Image, &root, None, &Columns::default())
                    .map_err(|e| e.to_string())?;
                let mut fresh = session_with(dataset);
                let recipe =
                    Recipe::from_json(r#"{"head": {"epochs": 1, "batch_size": 4}, "finetune": null, "val_fraction": 0.2}"#).unwrap();
                let report = block_on(fresh.train(&recipe, &mut |_| Control::Continue))
                    .map_err(|e| e.to_string())?;
                let skipped: BTreeMap<String, String> = report
                    .skipped
                    .iter()
                    .map(|(n, why)| {
                        (
                            Path::new(n)
                                .file_name()
                                .unwrap()
                                .to_string_lossy()
                                .into_owned(),
                            why.clone(),
                        )
                    })
                    .collect();
                std::fs::remove_dir_all(&root).ok();
                let names: Vec<&str> = skipped.keys().map(String::as_str).collect();
                check(names == ["bomb.png", "empty.png", "notes.png"], || {
                    format!("left out: {skipped:?}")
                })?;
                check(skipped["bomb.png"].contains("megapixels"), || {
                    skipped["bomb.png"].clone()
                })?;
                // The session this row was given still has its own.
                check(s.summary().is_some(), || {
                    "the session lost its dataset".into()
                })
            }),
        ),
    ]
}

// ---- tables and text -----------------------------------------------------------------------

fn table(text: &str, name: &str) -> tabtune::Result<TextSet> {
    TextSet::parse(text.as_bytes(), name, &Columns::default())
}

fn parses(
    text: &'static str,
    name: &'static str,
    texts: &'static [&'static str],
    labels: &'static [&'static str],
) -> Box<dyn Fn(&mut Session) -> Outcome> {
    Box::new(move |_| {
        let set = table(text, name).map_err(|e| e.to_string())?;
        let got: Vec<&str> = set
            .labels
            .iter()
            .map(|&l| set.classes[l as usize].as_str())
            .collect();
        check(set.texts == texts && got == labels, || {
            format!("texts {:?}, labels {got:?}", set.texts)
        })
    })
}

fn text_cases() -> Vec<(&'static str, Box<dyn Fn(&mut Session) -> Outcome>)> {
    vec![
        (
            "a table of one column",
            Box::new(|_| {
                fails(
                    table("text\nhello\nworld\n", "one.csv"),
                    &["one.csv", "column"],
                )
            }),
        ),
        (
            "an empty file",
            Box::new(|_| fails(table("", "empty.csv"), &["empty.csv", "empty"])),
        ),
        (
            "labels with commas and quotes",
            parses(
                "text,label\n\"a, b\",\"x, \"\"y\"\"\"\nc,z\nd,\"x, \"\"y\"\"\"\ne,z\n",
                "q.csv",
                &["a, b", "c", "d", "e"],
                &["x, \"y\"", "z", "x, \"y\"", "z"],
            ),
        ),
        (
            "labels with emoji",
            parses(
                "text,label\nyay,😀\nnay,😡\nwoo,😀\nboo,😡\n",
                "e.csv",
                &["yay", "nay", "woo", "boo"],
                &["😀", "😡", "😀", "😡"],
            ),
        ),
        (
            "labels with surrounding spaces: one class",
            parses(
                "text,label\na, pos\nb,pos \nc,neg\nd,  neg\n",
                "s.csv",
                &["a", "b", "c", "d"],
                &["pos", "pos", "neg", "neg"],
            ),
        ),
        (
            "CRLF line ends",
            parses(
                "text,label\r\nhi,a\r\nho,b\r\nha,a\r\nhu,b\r\n",
                "crlf.csv",
                &["hi", "ho", "ha", "hu"],
                &["a", "b", "a", "b"],
            ),
        ),
        (
            "a byte-order mark",
            parses(
                "\u{feff}text,label\nhi,a\nho,b\nha,a\nhu,b\n",
                "bom.csv",
                &["hi", "ho", "ha", "hu"],
                &["a", "b", "a", "b"],
            ),
        ),
        (
            "TSV",
            parses(
                "text\tlabel\nhi, there\ta\nho\tb\nha\ta\nhu\tb\n",
                "t.tsv",
                &["hi, there", "ho", "ha", "hu"],
                &["a", "b", "a", "b"],
            ),
        ),
        (
            "JSONL",
            parses(
                "{\"text\": \"hi\", \"label\": \"a\"}\n{\"text\": \"ho\", \"label\": \"b\"}\n{\"text\": \"ha\", \"label\": \"a\"}\n{\"text\": \"hu\", \"label\": \"b\"}\n",
                "j.jsonl",
                &["hi", "ho", "ha", "hu"],
                &["a", "b", "a", "b"],
            ),
        ),
        (
            "JSONL with a broken line: named and left out",
            Box::new(|_| {
                let text = "{\"text\": \"hi\", \"label\": \"a\"}\n{\"text\": \"ho\n{\"text\": \"he\", \"label\": \"b\"}\n\
                            {\"text\": \"ha\", \"label\": \"a\"}\n{\"text\": \"hu\", \"label\": \"b\"}\n";
                let set = table(text, "j.jsonl").map_err(|e| e.to_string())?;
                check(set.texts == ["hi", "he", "ha", "hu"], || {
                    format!("{:?}", set.texts)
                })?;
                check(
                    set.skipped.iter().any(|(n, _)| n.contains("j.jsonl:2")),
                    || format!("{:?}", set.skipped),
                )
            }),
        ),
        (
            "non-ASCII text: the ids Hugging Face's tokenizer gives",
            Box::new(|_| {
                let dir = common::asset("models/all-MiniLM-L6-v2");
                let tokenizer = TextTokenizer::from_bytes(
                    &std::fs::read(dir.join("tokenizer.json")).unwrap(),
                    "tokenizer.json",
                    30522,
                    512,
                    128,
                )
                .map_err(|e| e.to_string())?;
                let want: Vec<serde_json::Value> =
                    serde_json::from_slice(&fixture("tokenizer_ids.json")).unwrap();
                for case in want {
                    let text = case["text"].as_str().unwrap();
                    let ids: Vec<i64> = case["ids"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_i64().unwrap())
                        .collect();
                    let got = tokenizer.encode(&[text]).map_err(|e| e.to_string())?;
                    check(got.ids == ids, || {
                        format!("{text}: {:?} vs Hugging Face's {ids:?}", got.ids)
                    })?;
                }
                Ok(())
            }),
        ),
    ]
}

// ---- recipes -------------------------------------------------------------------------------

fn sets(set: &'static str, want: &'static [&'static str]) -> Box<dyn Fn(&mut Session) -> Outcome> {
    Box::new(move |_| {
        fails(
            Recipe::with_sets(None, &[set.to_string()], Modality::Image),
            want,
        )
    })
}

fn recipe_cases() -> Vec<(&'static str, Box<dyn Fn(&mut Session) -> Outcome>)> {
    vec![
        (
            "NaN learning rate (CLI --set)",
            sets("head.lr=NaN", &["head.lr", "NaN"]),
        ),
        (
            "infinite learning rate (CLI --set)",
            sets("finetune.backbone_lr=inf", &["finetune.backbone_lr", "inf"]),
        ),
        (
            "negative learning rate",
            sets("head.lr=-0.001", &["head.lr", "-0.001", "positive"]),
        ),
        (
            "epochs 0 for fine-tuning",
            sets("finetune.epochs=0", &["finetune.epochs", "at least 1"]),
        ),
        (
            "an unknown field",
            sets("head.learning_rate=0.1", &["learning_rate"]),
        ),
        (
            "unfreeze out of range",
            Box::new(|s| {
                let recipe = Recipe::with_sets(
                    None,
                    &["finetune.unfreeze={\"last\": 99}".into()],
                    Modality::Image,
                )
                .unwrap();
                fails(
                    block_on(s.train(&recipe, &mut |_| Control::Continue)),
                    &["finetune.unfreeze", "99"],
                )
            }),
        ),
        (
            "a batch larger than the data",
            Box::new(|s| {
                fails(
                    s.check_recipe(Some(r#"{"head": {"batch_size": 500}}"#)),
                    &["head.batch_size", "500"],
                )
            }),
        ),
        (
            "recipe JSON that does not parse",
            Box::new(|s| fails(s.check_recipe(Some("{\"head\": ")), &["recipe"])),
        ),
    ]
}

// ---- adapters (LoRA) -----------------------------------------------------------------------

/// A PEFT adapter_config.json over LoRA's usual fields, with `patch` on top.
fn adapter_config(patch: serde_json::Value) -> String {
    let mut config = serde_json::json!({
        "peft_type": "LORA", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
        "target_modules": ["features.18.0"], "bias": "none", "use_dora": false,
    });
    for (k, v) in patch.as_object().unwrap() {
        config[k] = v.clone();
    }
    config.to_string()
}

/// safetensors bytes of F32 tensors `(name, shape)`, zeros.
fn zeros_safetensors(tensors: &[(&str, Vec<usize>)]) -> Vec<u8> {
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s)| {
            (
                n.to_string(),
                s.clone(),
                vec![0u8; 4 * s.iter().product::<usize>()],
            )
        })
        .collect();
    tabtune::weights::f32_safetensors(&data, None).unwrap()
}

fn with_adapter(
    config: String,
    weights: Vec<u8>,
    want: &'static [&'static str],
) -> Box<dyn Fn(&mut Session) -> Outcome> {
    Box::new(move |_| {
        let files = ModelFiles::open(&common::asset("models/mobilenet_v2")).unwrap();
        fails(files.with_adapter("adapter", &config, &weights), want)
    })
}

fn adapter_cases() -> Vec<(&'static str, Box<dyn Fn(&mut Session) -> Outcome>)> {
    let last = |r: usize| {
        zeros_safetensors(&[
            (
                "base_model.model.features.18.0.lora_A.weight",
                vec![r, 320, 1, 1],
            ),
            (
                "base_model.model.features.18.0.lora_B.weight",
                vec![1280, r, 1, 1],
            ),
        ])
    };
    let train_with = |set: &'static str,
                      want: &'static [&'static str]|
     -> Box<dyn Fn(&mut Session) -> Outcome> {
        Box::new(move |s| {
            let recipe = Recipe::with_sets(None, &[set.to_string()], Modality::Image);
            fails(
                recipe.and_then(|r| block_on(s.train(&r, &mut |_| Control::Continue))),
                want,
            )
        })
    };
    vec![
        (
            "rank 0",
            sets("finetune.lora.r=0", &["finetune.lora.r", "at least 1"]),
        ),
        (
            "alpha NaN",
            sets("finetune.lora.alpha=NaN", &["finetune.lora.alpha", "NaN"]),
        ),
        (
            "dropout 1",
            sets(
                "finetune.lora.dropout=1",
                &["finetune.lora.dropout", "[0, 1)"],
            ),
        ),
        (
            "targets that match no layer (refused before training)",
            train_with(
                "finetune.lora.target_modules=[\"query\"]",
                &["target_modules", "query", "features.1.conv.1"],
            ),
        ),
        (
            "a target that is no 1x1 convolution",
            train_with(
                "finetune.lora.target_modules=[\"features.0.0\"]",
                &["target_modules", "features.0.0"],
            ),
        ),
        (
            "an adapter config that is not JSON",
            with_adapter(
                "{\"peft_type\": ".into(),
                last(4),
                &["adapter_config.json", "JSON"],
            ),
        ),
        (
            "another PEFT method (IA3)",
            with_adapter(
                adapter_config(serde_json::json!({"peft_type": "IA3"})),
                last(4),
                &["peft_type", "IA3", "LORA"],
            ),
        ),
        (
            "DoRA",
            with_adapter(
                adapter_config(serde_json::json!({"use_dora": true})),
                last(4),
                &["use_dora"],
            ),
        ),
        (
            "per-layer ranks",
            with_adapter(
                adapter_config(serde_json::json!({"rank_pattern": {"features.18.0": 8}})),
                last(4),
                &["rank_pattern"],
            ),
        ),
        (
            "weights without any lora_A",
            with_adapter(
                adapter_config(serde_json::json!({})),
                zeros_safetensors(&[("x.weight", vec![2, 2])]),
                &["lora_A", "not a LoRA adapter"],
            ),
        ),
        (
            "an adapter of another rank than its config",
            Box::new(move |s| {
                let files = ModelFiles::open(&common::asset("models/mobilenet_v2"))
                    .unwrap()
                    .with_adapter("adapter", &adapter_config(serde_json::json!({})), &last(8))
                    .unwrap();
                fails(s.load(files).map(|_| ()), &["features.18.0", "rank 4"])
            }),
        ),
        (
            "an adapter for a layer the model does not have",
            Box::new(move |s| {
                let weights = zeros_safetensors(&[
                    (
                        "base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight",
                        vec![4, 384],
                    ),
                    (
                        "base_model.model.bert.encoder.layer.0.attention.self.query.lora_B.weight",
                        vec![384, 4],
                    ),
                ]);
                let files = ModelFiles::open(&common::asset("models/mobilenet_v2"))
                    .unwrap()
                    .with_adapter("adapter", &adapter_config(serde_json::json!({})), &weights)
                    .unwrap();
                fails(
                    s.load(files).map(|_| ()),
                    &["bert.encoder.layer.0.attention.self.query", "does not have"],
                )
            }),
        ),
        (
            "an adapter put onto the loaded model that does not fit it",
            Box::new(move |s| {
                s.load(ModelFiles::open(&common::asset("models/mobilenet_v2")).unwrap())
                    .map_err(|e| e.to_string())?;
                let config = adapter_config(serde_json::json!({}));
                fails(
                    s.load_adapter("adapter", &config, &last(8)).map(|_| ()),
                    &["features.18.0", "rank 4"],
                )
            }),
        ),
        (
            "an adapter-only export of a model without adapters",
            Box::new(|s| {
                let recipe = Recipe::with_sets(
                    None,
                    &[
                        "head.epochs=1".into(),
                        "head.batch_size=4".into(),
                        "finetune=null".into(),
                    ],
                    Modality::Image,
                )
                .unwrap();
                block_on(s.train(&recipe, &mut |_| Control::Continue))
                    .map_err(|e| e.to_string())?;
                fails(
                    block_on(s.export_parts(false, true)),
                    &["no adapters", "finetune.lora"],
                )
            }),
        ),
    ]
}

// ---- the matrix ----------------------------------------------------------------------------

fn session_with(dataset: Dataset) -> Session {
    let mut s = Session::new(Device::flex());
    s.load(ModelFiles::open(&common::asset("models/mobilenet_v2")).unwrap())
        .unwrap();
    s.set_dataset(dataset).unwrap();
    s
}

/// After a row: the model and dataset the session had are there, and a good input works.
fn still_usable(s: &Session, data: &Path) -> Outcome {
    check(
        s.kind() == ModelKind::Image && s.summary().is_some_and(|d| d.total == 8),
        || "the session lost its model or dataset".into(),
    )?;
    let digit = std::fs::read_dir(data.join("0"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    decode(&std::fs::read(&digit).unwrap(), "digit").map_err(|e| format!("a good image: {e}"))?;
    s.check_recipe(Some(r#"{"head": {"epochs": 1, "batch_size": 4}}"#))
        .map_err(|e| format!("a good recipe: {e}"))?;
    Ok(())
}

#[test]
fn the_bad_input_matrix() {
    let data: PathBuf = common::mnist_subset("bad-matrix", 2, 4);
    let mut failures = Vec::new();
    let mut counts = BTreeMap::new();
    for (area, cases) in [
        ("weights", weights_cases()),
        ("images", image_cases()),
        ("tables and text", text_cases()),
        ("recipes", recipe_cases()),
        ("adapters", adapter_cases()),
    ] {
        counts.insert(area, cases.len());
        for (name, case) in cases {
            let mut s = session_with(
                Dataset::open(ModelKind::Image, &data, None, &Columns::default()).unwrap(),
            );
            let outcome = case(&mut s).and_then(|()| {
                // A row that loaded other weights into the session put back what it had.
                if s.kind() != ModelKind::Image {
                    return Err("the session holds another kind of model".into());
                }
                still_usable(&s, &data)
            });
            println!(
                "{area} / {name}: {}",
                outcome.as_ref().err().map_or("ok", String::as_str)
            );
            if let Err(why) = outcome {
                failures.push(format!("{area} / {name}: {why}"));
            }
        }
    }
    std::fs::remove_dir_all(&data).ok();
    println!(
        "rows: {counts:?}, {} in all",
        counts.values().sum::<usize>()
    );
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
