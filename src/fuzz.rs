//! The parsers a user feeds, one entry each taking arbitrary bytes, for `make fuzz`
//! (fuzz/fuzz_targets/*.rs call these) and for the replay of the kept corpus in `make test`
//! (tests/fuzz_corpus.rs). Each may return an error; none may panic or hang.

use std::sync::OnceLock;

use crate::data::{Columns, TextSet, TextTokenizer};
use crate::session::ModelFiles;

/// The targets by name, as the fuzz crate and the corpus folders name them.
pub const TARGETS: [(&str, fn(&[u8])); 8] = [
    ("safetensors", safetensors),
    ("pth", pth),
    ("config", config),
    ("tokenizer", tokenizer),
    ("table", table),
    ("series", series),
    ("image", image),
    ("audio", audio),
];

/// Weights as the browser gives them (bytes named model.safetensors): the header, the
/// architecture and classes told from it.
pub fn safetensors(data: &[u8]) {
    let _ = ModelFiles::from_named(
        "fuzz",
        vec![("model.safetensors".into(), data.to_vec())],
        None,
    );
}

/// A .pth file (legacy pickle or zip) read from a path, as the CLI reads one.
pub fn pth(data: &[u8]) {
    thread_local! {
        static PATH: std::path::PathBuf = std::env::temp_dir().join(format!(
            "tabtune-fuzz-{}-{:?}.pth",
            std::process::id(),
            std::thread::current().id()
        ));
    }
    PATH.with(|path| {
        if std::fs::write(path, data).is_ok() {
            let _ = crate::weights::inspect(&crate::weights::WeightSource::Path(path.clone()));
        }
    });
}

/// A one-tensor safetensors file, for a config.json to describe.
fn tiny_weights() -> Vec<u8> {
    static TINY: OnceLock<Vec<u8>> = OnceLock::new();
    TINY.get_or_init(|| {
        let header = br#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend(header);
        out.extend([0u8; 16]);
        out
    })
    .clone()
}

/// config.json beside weights: a BERT config, a series network's layers, a Whisper config,
/// a fine-tuned classifier's labels.
pub fn config(data: &[u8]) {
    let files = vec![
        ("model.safetensors".into(), tiny_weights()),
        ("config.json".into(), data.to_vec()),
        ("tokenizer.json".into(), b"{}".to_vec()),
    ];
    let _ = ModelFiles::from_named("fuzz", files, None);
}

/// tokenizer.json: parsed, checked against its own vocabulary size, and used on a few texts.
pub fn tokenizer(data: &[u8]) {
    let Ok(vocab) = crate::data::tokenize::vocab_size(data) else {
        return;
    };
    if let Ok(t) = TextTokenizer::from_bytes(data, "tokenizer.json", vocab, 512, 16) {
        let _ = t.encode(&["hello world", "Crème brûlée 東京 🎉", ""]);
    }
}

/// A CSV, TSV or JSONL table (the first byte picks the name's extension).
pub fn table(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let name = ["t.csv", "t.tsv", "t.jsonl", "t.txt"][pick as usize % 4];
    let _ = TextSet::parse(rest, name, &Columns::default());
}

/// A sensor recording (CSV/TSV/JSONL with a time column, channels and a label).
pub fn series(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let name = ["r.csv", "r.tsv", "r.jsonl"][pick as usize % 3];
    let wanted = crate::data::series::Wanted {
        channels: Vec::new(),
        label_column: Some("label".into()),
        targets: Vec::new(),
        rate_hz: Some(50.0),
        declared_rate_hz: 50.0,
        max_gap_s: 0.5,
    };
    let _ = crate::data::Recordings::read(vec![(name.into(), "g".into(), rest.to_vec())], &wanted);
}

/// An image file, decoded as a dataset's images are natively.
pub fn image(data: &[u8]) {
    let _ = crate::data::image::decode(data, "fuzz");
}

/// An audio file (the first byte picks the extension hint), decoded and resampled to 16 kHz.
pub fn audio(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let name = ["a.wav", "a.mp3", "a.ogg", "a.flac"][pick as usize % 4];
    let _ = crate::data::audio::load(rest.to_vec(), name);
}
