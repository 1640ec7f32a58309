//! Audio with transcripts, for speech recognition: every clip decoded and resampled to 16 kHz
//! mono (the decoding of [`super::audio`]) with the text it should be transcribed as.
//!
//! Three layouts, told from the files:
//! - Hugging Face's audiofolder: a `metadata.csv` with a `file_name` column and the
//!   transcript in `transcription` (or `text`, `sentence`, `transcript`); file names are
//!   relative to the CSV. Subfolders `train/` and `val/` (or `validation/`, `test/`) with a
//!   metadata.csv each are a given split.
//! - A JSONL file of `{"audio": "clip.wav", "text": "..."}` rows (paths relative to it).
//! - Pairs: `x.wav` (any format [`super::audio::decode`] reads) beside `x.txt`.
//!
//! Bad rows are left out, each named with the reason, and the rest is used: a missing audio
//! file, an empty transcript, a clip that cannot be decoded, a clip longer than 30 s (the
//! encoder's window: refused, not cut, as a transcript without timestamps cannot be split), a
//! clip of silence. (A transcript longer than the decoder's context is found when a run's
//! tokenizer counts it, and left out then.)

use std::collections::{BTreeMap, BTreeSet};

use super::audio::{level_db, load};
use super::mel::SAMPLE_RATE;
use crate::{Error, Result};

/// Longest clip (s): Whisper's encoder sees 30 s.
pub const MAX_SECONDS: f64 = 30.0;
/// A clip whose RMS level is below this (dB full scale) is silence.
pub const SILENCE_DB: f32 = -60.0;
/// Columns that may hold the transcript, in the order they are looked for.
pub const TEXT_COLUMNS: [&str; 4] = ["transcription", "text", "sentence", "transcript"];

/// One clip and its transcript.
#[derive(Debug, Clone)]
pub struct Clip {
    /// The file (and row) it came from.
    pub name: String,
    /// 16 kHz mono samples in [-1, 1].
    pub samples: Vec<f32>,
    /// The transcript, as given (trimmed).
    pub text: String,
}

impl Clip {
    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(SAMPLE_RATE)
    }
}

/// A transcribed set: its clips, a given validation split if the files had one, and the rows
/// left out.
#[derive(Debug, Clone, Default)]
pub struct Transcripts {
    /// Every clip read.
    pub clips: Vec<Clip>,
    /// Indices into `clips` of a given validation set (`val/` beside `train/`), if any.
    pub val: Option<Vec<usize>>,
    /// (row or file, why it was left out).
    pub skipped: Vec<(String, String)>,
}

/// A clip's 16 kHz samples from its file's bytes: decoded and resampled, and refused (naming
/// `name`) when longer than the [`MAX_SECONDS`] the model hears at once.
pub fn load_clip(bytes: Vec<u8>, name: &str) -> Result<Vec<f32>> {
    let samples = load(bytes, name)?;
    let seconds = samples.len() as f64 / f64::from(SAMPLE_RATE);
    if seconds > MAX_SECONDS {
        return Err(Error::Data(format!(
            "{name}: {seconds:.1} s is longer than the {MAX_SECONDS:.0} s the model hears at once \
             (cut it into clips of their own transcripts)"
        )));
    }
    Ok(samples)
}

/// A row before its audio is read: (where it was named, audio file path, transcript).
struct Row {
    at: String,
    audio: String,
    text: String,
    val: bool,
}

/// `path` with `.`/`..` parts resolved, `/`-separated.
fn join(dir: &str, file: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let base = if file.starts_with('/') { "" } else { dir };
    for p in base.split('/').chain(file.split('/')) {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

fn is_val_dir(dir: &str) -> bool {
    dir.split('/')
        .any(|p| matches!(p, "val" | "valid" | "validation" | "test" | "dev"))
}

const AUDIO: [&str; 7] = ["wav", "mp3", "ogg", "oga", "flac", "m4a", "webm"];

fn extension(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

/// The rows of one metadata.csv at `path`.
fn metadata_rows(
    path: &str,
    bytes: &[u8],
    skipped: &mut Vec<(String, String)>,
) -> Result<Vec<Row>> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| Error::Data(format!("{path}: not a CSV: {e}")))?
        .clone();
    let find = |name: &str| headers.iter().position(|h| h.trim() == name);
    let file_col = find("file_name").ok_or_else(|| {
        Error::Data(format!(
            "{path}: no `file_name` column (it has: {})",
            headers.iter().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let text_col = TEXT_COLUMNS.iter().find_map(|c| find(c)).ok_or_else(|| {
        Error::Data(format!(
            "{path}: no transcript column ({}; it has: {})",
            TEXT_COLUMNS.join(", "),
            headers.iter().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let dir = parent(path).to_string();
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let at = format!("{path}:{}", i + 2);
        match record {
            Err(e) => skipped.push((at, format!("not a CSV row: {e}"))),
            Ok(r) => rows.push(Row {
                audio: join(&dir, r.get(file_col).unwrap_or("").trim()),
                text: r.get(text_col).unwrap_or("").trim().to_string(),
                val: is_val_dir(&dir),
                at,
            }),
        }
    }
    Ok(rows)
}

/// The rows of a JSONL file of `{audio, text}`.
fn jsonl_rows(path: &str, bytes: &[u8], skipped: &mut Vec<(String, String)>) -> Vec<Row> {
    let dir = parent(path).to_string();
    let text = String::from_utf8_lossy(bytes);
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = format!("{path}:{}", i + 1);
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                skipped.push((at, format!("not JSON: {e}")));
                continue;
            }
        };
        let audio = value
            .get("audio")
            .or_else(|| value.get("file_name"))
            .and_then(|v| v.as_str().or_else(|| v.get("path")?.as_str()));
        let transcript = TEXT_COLUMNS.iter().find_map(|c| value.get(*c)?.as_str());
        match audio {
            None => skipped.push((at, "no `audio` (a file name) in the row".into())),
            Some(audio) => rows.push(Row {
                audio: join(&dir, audio),
                text: transcript.unwrap_or("").trim().to_string(),
                val: is_val_dir(&dir),
                at,
            }),
        }
    }
    rows
}

impl Transcripts {
    /// Read a set from named files (`relative/path` -> bytes): the layout is told from them
    /// (see the module). Bad rows are left out and named; a set with no clip left is an error.
    pub fn from_files(files: Vec<(String, Vec<u8>)>) -> Result<Self> {
        let mut files: BTreeMap<String, Vec<u8>> = files
            .into_iter()
            .map(|(n, b)| (join("", &n.replace('\\', "/")), b))
            .collect();
        let mut skipped = Vec::new();
        let mut rows = Vec::new();
        let lists: Vec<String> = files
            .keys()
            .filter(|n| n.rsplit('/').next() == Some("metadata.csv") || extension(n) == "jsonl")
            .cloned()
            .collect();
        for list in &lists {
            let bytes = files.remove(list).unwrap_or_default();
            if list.ends_with(".jsonl") {
                rows.extend(jsonl_rows(list, &bytes, &mut skipped));
            } else {
                rows.extend(metadata_rows(list, &bytes, &mut skipped)?);
            }
        }
        if lists.is_empty() {
            // Pairs: audio files with a .txt of the same stem.
            for name in files
                .keys()
                .filter(|n| AUDIO.contains(&extension(n).as_str()))
            {
                let stem = &name[..name.len() - extension(name).len() - 1];
                let txt = format!("{stem}.txt");
                match files.get(&txt) {
                    Some(t) => rows.push(Row {
                        at: name.clone(),
                        audio: name.clone(),
                        text: String::from_utf8_lossy(t).trim().to_string(),
                        val: is_val_dir(parent(name)),
                    }),
                    None => {
                        skipped.push((name.clone(), format!("no transcript: {txt} is missing")))
                    }
                }
            }
            if rows.is_empty() {
                return Err(Error::Data(
                    "no transcribed audio among the files: give a metadata.csv (file_name, \
                     transcription), a .jsonl of {audio, text}, or x.wav files beside x.txt"
                        .into(),
                ));
            }
        }
        let mut set = Self {
            skipped,
            ..Self::default()
        };
        let mut val = Vec::new();
        let mut used = BTreeSet::new();
        for row in rows {
            if row.text.is_empty() {
                set.skipped.push((row.at, "the transcript is empty".into()));
                continue;
            }
            let Some(bytes) = files.get(&row.audio) else {
                set.skipped
                    .push((row.at, format!("the audio file {} is missing", row.audio)));
                continue;
            };
            if !used.insert(row.audio.clone()) {
                set.skipped
                    .push((row.at, format!("{} is named twice", row.audio)));
                continue;
            }
            let samples = match load_clip(bytes.clone(), &row.audio) {
                Ok(s) => s,
                Err(e) => {
                    set.skipped.push((row.at, e.to_string()));
                    continue;
                }
            };
            let level = level_db(&samples);
            if samples.is_empty() || level < SILENCE_DB {
                set.skipped.push((
                    row.at,
                    format!("{}: the clip is silence ({level:.0} dBFS)", row.audio),
                ));
                continue;
            }
            if row.val {
                val.push(set.clips.len());
            }
            set.clips.push(Clip {
                name: row.at,
                samples,
                text: row.text,
            });
        }
        if set.clips.is_empty() {
            let first = set.skipped.first().map_or(String::new(), |(at, why)| {
                format!("; the first: {at}: {why}")
            });
            return Err(Error::Data(format!(
                "no usable clip: {} rows left out{first}",
                set.skipped.len()
            )));
        }
        if !val.is_empty() && val.len() < set.clips.len() {
            set.val = Some(val);
        }
        Ok(set)
    }

    /// Read a folder (or a metadata.csv / JSONL file, with the audio beside it).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &std::path::Path) -> Result<Self> {
        let root = if path.is_file() {
            path.parent().unwrap_or(std::path::Path::new("."))
        } else {
            path
        };
        let mut files = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| Error::Data(format!("{}: {e}", dir.display())))?;
            for entry in entries {
                let p = entry
                    .map_err(|e| Error::Data(format!("{}: {e}", dir.display())))?
                    .path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let rel = p
                    .strip_prefix(root)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .replace('\\', "/");
                let ext = extension(&rel);
                let wanted = AUDIO.contains(&ext.as_str())
                    || ext == "txt"
                    || ext == "jsonl"
                    || rel.ends_with("metadata.csv");
                // A list file given directly: only that one.
                if path.is_file() && (ext == "jsonl" || rel.ends_with(".csv")) && p != path {
                    continue;
                }
                if wanted {
                    let bytes = std::fs::read(&p)
                        .map_err(|e| Error::Data(format!("{}: {e}", p.display())))?;
                    files.push((rel, bytes));
                }
            }
        }
        Self::from_files(files)
    }

    /// Seconds of audio.
    pub fn seconds(&self) -> f64 {
        self.clips.iter().map(Clip::seconds).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16-bit mono WAV of `seconds` of a 440 Hz tone (or silence) at 16 kHz.
    fn wav(seconds: f64, tone: bool) -> Vec<u8> {
        let n = (seconds * 16000.0) as usize;
        let mut out = Vec::new();
        let data = (n * 2) as u32;
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&16000u32.to_le_bytes());
        out.extend_from_slice(&32000u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data.to_le_bytes());
        for i in 0..n {
            let v = if tone {
                (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 16000.0).sin()) as i16
            } else {
                0
            };
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    #[test]
    fn bad_rows_are_named_and_the_rest_is_used() {
        let metadata = "file_name,transcription\n\
                        a.wav,The patient was given amoxicillin.\n\
                        b.wav,\n\
                        missing.wav,Hello there.\n\
                        long.wav,A long clip.\n\
                        quiet.wav,Nothing at all.\n\
                        c.wav,\"Quoted, with a comma.\"\n";
        let files = vec![
            ("set/metadata.csv".to_string(), metadata.as_bytes().to_vec()),
            ("set/a.wav".into(), wav(1.0, true)),
            ("set/b.wav".into(), wav(1.0, true)),
            ("set/long.wav".into(), wav(45.0, true)),
            ("set/quiet.wav".into(), wav(2.0, false)),
            ("set/c.wav".into(), wav(0.5, true)),
        ];
        let set = Transcripts::from_files(files).unwrap();
        let names: Vec<&str> = set.clips.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["set/metadata.csv:2", "set/metadata.csv:7"]);
        assert_eq!(set.clips[1].text, "Quoted, with a comma.");
        let why = |row: &str| {
            set.skipped
                .iter()
                .find(|(at, _)| at == row)
                .map(|(_, w)| w.clone())
                .unwrap_or_else(|| panic!("{row} not named: {:?}", set.skipped))
        };
        assert!(why("set/metadata.csv:3").contains("empty"));
        assert!(why("set/metadata.csv:4").contains("set/missing.wav is missing"));
        assert!(why("set/metadata.csv:5").contains("45.0 s is longer than the 30 s"));
        assert!(why("set/metadata.csv:6").contains("silence"));
        assert!(set.val.is_none());
    }

    #[test]
    fn layouts_and_a_given_split() {
        // train/ and val/ with a metadata.csv each: a given split.
        let files = vec![
            (
                "train/metadata.csv".to_string(),
                b"file_name,text\n1.wav,One.\n2.wav,Two.\n".to_vec(),
            ),
            ("train/1.wav".into(), wav(0.5, true)),
            ("train/2.wav".into(), wav(0.5, true)),
            (
                "val/metadata.csv".into(),
                b"file_name,text\n3.wav,Three.\n".to_vec(),
            ),
            ("val/3.wav".into(), wav(0.5, true)),
        ];
        let set = Transcripts::from_files(files).unwrap();
        assert_eq!(set.val, Some(vec![2]));
        assert_eq!(set.clips[2].text, "Three.");

        // JSONL and pairs.
        let files = vec![
            (
                "d/list.jsonl".to_string(),
                b"{\"audio\": \"x.wav\", \"text\": \"Ex.\"}\nnot json\n".to_vec(),
            ),
            ("d/x.wav".into(), wav(0.5, true)),
        ];
        let set = Transcripts::from_files(files).unwrap();
        assert_eq!(set.clips[0].text, "Ex.");
        assert!(
            set.skipped
                .iter()
                .any(|(at, w)| at == "d/list.jsonl:2" && w.contains("not JSON"))
        );
        let files = vec![
            ("p/a.wav".to_string(), wav(0.5, true)),
            ("p/a.txt".into(), b"Pair.\n".to_vec()),
            ("p/b.wav".into(), wav(0.5, true)),
        ];
        let set = Transcripts::from_files(files).unwrap();
        assert_eq!(set.clips.len(), 1);
        assert!(
            set.skipped
                .iter()
                .any(|(at, w)| at == "p/b.wav" && w.contains("p/b.txt is missing"))
        );
        // Nothing transcribed at all.
        let err = Transcripts::from_files(vec![("x.png".into(), vec![1])]).unwrap_err();
        assert!(err.to_string().contains("metadata.csv"), "{err}");
    }
}
