//! Audio through the session, natively (CPU): the spoken-commands demo set (from `make
//! assets`) trains both phases, the export reloads and predicts the same, and bad input is
//! refused by name without losing what the session holds.
#![cfg(not(target_arch = "wasm32"))] // reads the model and the data from assets/

use std::path::{Path, PathBuf};

use burn::prelude::Device;
use tabtune::data::AudioClips;
use tabtune::session::{Dataset, ModelFiles, ModelKind, Session};
use tabtune::train::{Control, Modality, Recipe};

mod common;
use common::asset;

/// `per_class` files of each of `classes` of the demo set, copied into a fresh folder.
fn commands(name: &str, classes: &[&str], per_class: usize) -> PathBuf {
    let src = asset("datasets/commands");
    let root = std::env::temp_dir().join(format!("tabtune-audio-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for class in classes {
        std::fs::create_dir_all(root.join(class)).unwrap();
        let mut files: Vec<PathBuf> = std::fs::read_dir(src.join(class))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files.iter().take(per_class) {
            std::fs::copy(f, root.join(class).join(f.file_name().unwrap())).unwrap();
        }
    }
    root
}

/// A 16-bit mono WAV of `samples` at `rate`.
fn wav16(rate: u32, samples: &[f32]) -> Vec<u8> {
    let data: Vec<u8> = samples
        .iter()
        .flat_map(|x| ((x.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes())
        .collect();
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    for v in [1u16, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    for v in [2u16, 16] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}

/// A well-formed IMA ADPCM WAV (format tag 0x11), a codec tabtune does not decode.
fn ima_adpcm() -> Vec<u8> {
    let blocks = 4;
    let data = vec![0u8; 256 * blocks];
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(4 + 28 + 8 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&20u32.to_le_bytes());
    for v in [0x11u16, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&16_000u32.to_le_bytes());
    out.extend_from_slice(&8_000u32.to_le_bytes());
    for v in [256u16, 4, 2, 505] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}

fn tone(rate: u32, hz: f32, seconds: f32) -> Vec<f32> {
    (0..(rate as f32 * seconds) as usize)
        .map(|i| 0.3 * (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin())
        .collect()
}

fn session() -> Session {
    let mut session = Session::new(Device::flex());
    let files = ModelFiles::open(&asset("models/speech_embedding")).unwrap();
    assert_eq!(files.kind(), ModelKind::Audio);
    assert_eq!(files.info.arch, "speech_embedding");
    session.load(files).unwrap();
    session
}

#[test]
fn the_demo_commands_train_in_both_phases_and_the_export_predicts_the_same() {
    let root = commands("both", &["yes", "no", "stop", "background"], 15);
    let mut session = session();
    let summary = session
        .set_dataset(Dataset::open(ModelKind::Audio, &root, None, &Default::default()).unwrap())
        .unwrap();
    assert_eq!(summary.counts, [15, 15, 15, 15]);
    let mut recipe = Recipe::defaults(Modality::Audio);
    recipe.head.epochs = 20;
    let finetune = recipe.finetune.as_mut().unwrap();
    finetune.epochs = 1;
    finetune.batch_size = 16;
    let report =
        futures_lite::future::block_on(session.train(&recipe, &mut |_| Control::Continue)).unwrap();
    print!("{}", report.describe("clips"));
    let head = report.phases[0].best_val_accuracy().unwrap();
    let full = report.phases[1].best_val_accuracy().unwrap();
    // 4 classes, 12 validation clips: chance is 25%.
    assert!(head >= 0.75, "head-only validation accuracy {head}");
    assert!(full >= 0.75, "full phase validation accuracy {full}");

    // The export is a classifier that loads and predicts the same probabilities.
    let files = futures_lite::future::block_on(session.export()).unwrap();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"model.safetensors") && names.contains(&"config.json"));
    let clip = tabtune::data::audio::load(
        std::fs::read(root.join("stop/000.wav")).unwrap(),
        "stop/000.wav",
    )
    .unwrap();
    let before =
        futures_lite::future::block_on(session.predict_audio(std::slice::from_ref(&clip))).unwrap();
    let mut reloaded = Session::new(Device::flex());
    let info = reloaded
        .load(ModelFiles::from_named("export", files, None).unwrap())
        .unwrap();
    assert_eq!(info.kind, "audio");
    assert_eq!(info.classes.as_deref().map(<[String]>::len), Some(4));
    let after = futures_lite::future::block_on(reloaded.predict_audio(&[clip])).unwrap();
    assert_eq!(before[0][0].label, after[0][0].label);
    assert!((before[0][0].probability - after[0][0].probability).abs() < 1e-5);
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn bad_audio_is_refused_by_name_and_the_session_keeps_its_data() {
    let root = commands("bad", &["yes", "no"], 4);
    let write = |name: &str, bytes: &[u8]| std::fs::write(root.join(name), bytes).unwrap();
    let good = wav16(16_000, &tone(16_000, 440.0, 0.5));
    // A zero-length file, a truncated header, a file that is no audio, a codec not decoded
    // (MS ADPCM, format tag 2): left out, each named with its reason.
    write("yes/empty.wav", b"");
    write("yes/cut.wav", &good[..20]);
    write("no/notes.wav", b"these are my notes, not audio");
    write("no/adpcm.wav", &ima_adpcm());
    // 8 kHz and 96 kHz files are resampled.
    write("yes/low.wav", &wav16(8_000, &tone(8_000, 300.0, 1.0)));
    write("no/high.wav", &wav16(96_000, &tone(96_000, 300.0, 1.0)));
    let clips = AudioClips::open(&root).unwrap();
    assert_eq!(clips.len(), 4 + 4 + 2);
    let why = |file: &str| {
        clips
            .skipped
            .iter()
            .find(|(n, _)| n.ends_with(file))
            .map(|(_, w)| w.clone())
            .unwrap_or_else(|| panic!("{file} was not reported: {:?}", clips.skipped))
    };
    assert!(why("empty.wav").contains("empty"), "{}", why("empty.wav"));
    assert!(why("cut.wav").contains("cut.wav"), "{}", why("cut.wav"));
    assert!(
        why("notes.wav").contains("not an audio file"),
        "{}",
        why("notes.wav")
    );
    assert!(why("adpcm.wav").contains("codec"), "{}", why("adpcm.wav"));
    assert!(
        why("adpcm.wav").contains("adpcm.wav"),
        "{}",
        why("adpcm.wav")
    );
    let low = clips
        .names
        .iter()
        .position(|n| n.ends_with("low.wav"))
        .unwrap();
    assert_eq!(clips.clips[low].len(), 16_000);
    let high = clips
        .names
        .iter()
        .position(|n| n.ends_with("high.wav"))
        .unwrap();
    assert_eq!(clips.clips[high].len(), 16_000);

    // A session with a dataset keeps it when the next one is refused: a class of silence.
    let mut session = session();
    session
        .set_dataset(Dataset::Audio {
            clips: clips.clone(),
            split: None,
        })
        .unwrap();
    let silent = commands("silent", &["yes"], 3);
    std::fs::create_dir_all(silent.join("quiet")).unwrap();
    for i in 0..3 {
        std::fs::write(
            silent.join(format!("quiet/{i}.wav")),
            wav16(16_000, &vec![0.0; 16_000]),
        )
        .unwrap();
    }
    let quiet = AudioClips::open(&silent).unwrap();
    let mut recipe = Recipe::defaults(Modality::Audio);
    recipe.head.epochs = 1;
    recipe.finetune = None;
    session
        .set_dataset(Dataset::Audio {
            clips: quiet,
            split: None,
        })
        .unwrap();
    let err = futures_lite::future::block_on(session.train(&recipe, &mut |_| Control::Continue))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"quiet\"") && err.contains("silence"),
        "{err}"
    );
    // The model is still loaded and the next good dataset trains.
    session
        .set_dataset(Dataset::Audio { clips, split: None })
        .unwrap();
    futures_lite::future::block_on(session.train(&recipe, &mut |_| Control::Continue)).unwrap();
    std::fs::remove_dir_all(root).ok();
    std::fs::remove_dir_all(silent).ok();
}

#[test]
fn a_ten_minute_file_is_cut_into_windows() {
    let root = std::env::temp_dir().join(format!("tabtune-audio-long-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let path: &Path = &root.join("long.wav");
    // Ten minutes at 44.1 kHz: 53 MB of 16-bit samples.
    std::fs::write(path, wav16(44_100, &tone(44_100, 220.0, 600.0))).unwrap();
    let samples = tabtune::data::audio::load(std::fs::read(path).unwrap(), "long.wav").unwrap();
    assert_eq!(samples.len(), 600 * 16_000);
    let mut clips = AudioClips::new(vec!["tone".into(), "other".into()]);
    clips.push_samples("long.wav", samples, 0);
    clips.push_samples("short.wav", tone(16_000, 500.0, 1.0), 1);
    let set = tabtune::data::AudioSet::cut(&clips, &Default::default()).unwrap();
    // 1.5 s windows every 0.5 s over 600 s: 1,198 windows, each 24,000 samples.
    assert_eq!(set.len(), 1_198 + 1);
    assert_eq!(set.origins[1], "long.wav@0.50s");
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn flac_vorbis_and_mp3_decode_to_the_same_tone() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio");
    let load = |name: &str| {
        tabtune::data::audio::decode(std::fs::read(dir.join(name)).unwrap(), name).unwrap()
    };
    let (wav, rate) = load("tone.wav");
    assert_eq!((rate, wav.len()), (22_050, 11_025));
    // Pitch from rising zero crossings, level as RMS, over the middle of the clip (MP3 adds
    // encoder delay and padding at the ends).
    let measure = |x: &[f32], rate: u32| {
        let mid = &x[x.len() / 5..x.len() * 4 / 5];
        let ups = mid.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        let hz = ups as f32 * rate as f32 / mid.len() as f32;
        let rms = (mid.iter().map(|v| v * v).sum::<f32>() / mid.len() as f32).sqrt();
        (hz, rms)
    };
    let (hz, rms) = measure(&wav, rate);
    for name in ["tone.flac", "tone.ogg", "tone.mp3"] {
        let (x, r) = load(name);
        assert_eq!(r, 22_050, "{name}");
        assert!(
            (x.len() as i64 - wav.len() as i64).abs() < 2_400,
            "{name}: {} samples against {}",
            x.len(),
            wav.len()
        );
        let (h, level) = measure(&x, r);
        assert!((h - hz).abs() < 5.0, "{name}: {h} Hz against {hz}");
        assert!(
            (level / rms - 1.0).abs() < 0.1,
            "{name}: level {level} against {rms}"
        );
        if name == "tone.flac" {
            assert_eq!(x, wav, "FLAC is lossless");
        }
    }
}
