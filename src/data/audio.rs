//! Audio datasets: files decoded with symphonia (WAV of 8/16/24/32-bit integer or float
//! samples, MP3, OGG/Vorbis, FLAC; any channel count, mixed to mono), resampled to 16 kHz with
//! rubato, cut into windows of the recipe's length, and augmented (time shift, gain,
//! background noise at a signal-to-noise ratio). The same code runs natively and in the
//! browser, so the CLI and the tab see the same samples.
//!
//! A clip up to one window long is one example, centred in the window with silence around it;
//! a longer file is cut into windows every `stride` seconds (the last one ends with the file),
//! each an example of the file's class, and with `drop_silence` the windows whose level is
//! below `silence_db` are left out.

use std::io::Cursor;

use rand::Rng;
use serde::{Deserialize, Serialize};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
use symphonia::core::errors::Error as AudioError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::mel::SAMPLE_RATE;
use super::split::Split;
use crate::{Error, Result};

/// Longest audio file taken, in seconds (longer ones are refused by name: a day-long recording
/// would not fit a tab's memory once decoded).
pub const MAX_FILE_SECONDS: f64 = 3600.0;

/// How audio becomes examples, and how training examples are varied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudioOptions {
    /// Seconds of audio per example (the model sees this window).
    pub window: f32,
    /// Seconds between the windows a longer file is cut into.
    pub stride: f32,
    /// Leave out the windows of a longer file whose level is below `silence_db`.
    pub drop_silence: bool,
    /// Level (RMS, dB below full scale) under which a window counts as silence.
    pub silence_db: f32,
    /// Augmentation: random time shift of up to this many seconds either way.
    pub shift: f32,
    /// Augmentation: random gain of up to this many dB either way.
    pub gain_db: f32,
    /// Augmentation: the chance that noise is mixed into an example.
    pub noise_probability: f32,
    /// Augmentation: the signal-to-noise ratio range of the noise mixed in, in dB.
    pub noise_snr_db: [f32; 2],
    /// Augmentation: the class whose training examples are the noise mixed in (white noise
    /// when the data has no such class).
    pub noise_class: String,
}

impl Default for AudioOptions {
    fn default() -> Self {
        Self {
            window: 1.5,
            stride: 0.5,
            drop_silence: true,
            silence_db: -70.0,
            shift: 0.1,
            gain_db: 6.0,
            noise_probability: 0.5,
            noise_snr_db: [5.0, 20.0],
            noise_class: "background".into(),
        }
    }
}

impl AudioOptions {
    /// Samples per window at 16 kHz.
    pub fn window_samples(&self) -> usize {
        (self.window * SAMPLE_RATE as f32).round() as usize
    }

    /// Refuse values no run can use, naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, message: String| {
            Err(Error::Recipe {
                field: format!("audio.{field}"),
                message,
            })
        };
        // 0.8 s: the shortest window that makes one embedding (76 frames, 12,400 samples).
        if !(self.window.is_finite() && (0.8..=30.0).contains(&self.window)) {
            return bad(
                "window",
                format!("{} s: between 0.8 and 30 seconds", self.window),
            );
        }
        if !(self.stride.is_finite() && self.stride >= 0.05) {
            return bad(
                "stride",
                format!("{} s: at least 0.05 seconds", self.stride),
            );
        }
        if !(self.silence_db.is_finite() && self.silence_db <= 0.0) {
            return bad(
                "silence_db",
                format!("{}: a level in dB at or below 0", self.silence_db),
            );
        }
        if !(self.shift.is_finite() && self.shift >= 0.0 && self.shift < self.window) {
            return bad(
                "shift",
                format!("{} s: at least 0 and under the window", self.shift),
            );
        }
        if !(self.gain_db.is_finite() && (0.0..=40.0).contains(&self.gain_db)) {
            return bad("gain_db", format!("{}: between 0 and 40 dB", self.gain_db));
        }
        if !(self.noise_probability.is_finite() && (0.0..=1.0).contains(&self.noise_probability)) {
            return bad(
                "noise_probability",
                format!("{}: between 0 and 1", self.noise_probability),
            );
        }
        let [lo, hi] = self.noise_snr_db;
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            return bad(
                "noise_snr_db",
                format!("[{lo}, {hi}]: two finite dB, low first"),
            );
        }
        Ok(())
    }
}

/// A WAV file's `fmt ` chunk with no channels, a rate of 0 or a block of 0 bytes: symphonia's
/// reader panics on a rate of 0 (fuzzing found it), so the header is read here first.
/// symphonia's probe looks for a signature anywhere in the first bytes, so every RIFF/WAVE
/// header in them is checked.
fn check_wave_header(bytes: &[u8]) -> std::result::Result<(), String> {
    let starts = bytes
        .windows(12)
        .enumerate()
        .filter(|(_, w)| &w[..4] == b"RIFF" && &w[8..] == b"WAVE")
        .map(|(i, _)| i);
    for start in starts {
        check_wave_at(&bytes[start..])?;
    }
    Ok(())
}

fn check_wave_at(bytes: &[u8]) -> std::result::Result<(), String> {
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        if &bytes[at..at + 4] == b"fmt " {
            let fmt = &bytes[at + 8..(at + 8 + size).min(bytes.len())];
            if fmt.len() < 16 {
                return Err("its WAV format chunk is cut short".into());
            }
            let channels = u16::from_le_bytes([fmt[2], fmt[3]]);
            let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
            let block = u16::from_le_bytes([fmt[12], fmt[13]]);
            if channels == 0 || rate == 0 || block == 0 {
                return Err(format!(
                    "its WAV header says {channels} channel(s) at {rate} Hz in blocks of {block} \
                     bytes: not audio"
                ));
            }
            return Ok(());
        }
        at = at.saturating_add(8).saturating_add(size + (size & 1));
    }
    Ok(())
}

/// Decode a whole audio file to mono samples in [-1, 1] at its own rate: (samples, rate).
/// `name` (its extension) hints the container. An empty file, a file that is no audio, a
/// codec tabtune does not decode or a file cut short is an error naming the file.
pub fn decode(bytes: Vec<u8>, name: &str) -> Result<(Vec<f32>, u32)> {
    check_wave_header(&bytes).map_err(|why| Error::Data(format!("{name}: {why}")))?;
    let fail = |message: String| Error::Data(format!("{name}: {message}"));
    if bytes.is_empty() {
        return Err(fail("the file is empty (0 bytes)".into()));
    }
    let mut hint = Hint::new();
    if let Some(ext) = std::path::Path::new(name).extension() {
        hint.with_extension(&ext.to_string_lossy().to_lowercase());
    }
    let stream = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            stream,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|err| {
            fail(format!(
                "not an audio file tabtune reads (WAV, MP3, OGG/Vorbis, FLAC): {err}"
            ))
        })?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| fail("the file has no audio track".into()))?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    let rate = params
        .sample_rate
        .ok_or_else(|| fail("the file does not say its sample rate".into()))?;
    // A header's rate far outside what recorders write would take seconds and gigabytes to
    // resample (fuzzing found a 121-byte WAV that said 1.08 GHz).
    if !(1_000..=768_000).contains(&rate) {
        return Err(fail(format!(
            "a sample rate of {rate} Hz is outside the 1,000 to 768,000 Hz audio is recorded at"
        )));
    }
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|err| {
            fail(format!(
                "its codec is not one tabtune decodes (PCM, MP3, Vorbis, FLAC): {err}"
            ))
        })?;
    let limit = (MAX_FILE_SECONDS * f64::from(rate)) as usize;
    let mut mono: Vec<f32> = Vec::new();
    let mut buffer: Option<SampleBuffer<f32>> = None;
    let mut bad_packets = 0usize;
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            Err(AudioError::IoError(err)) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(AudioError::ResetRequired) => break,
            Err(err) => return Err(fail(format!("cannot read the audio: {err}"))),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            Err(AudioError::DecodeError(_)) => {
                bad_packets += 1;
                continue;
            }
            Err(err) => return Err(fail(format!("cannot decode the audio: {err}"))),
        };
        let spec = *decoded.spec();
        let channels = spec.channels.count().max(1);
        let buf = match &mut buffer {
            Some(b) if b.capacity() >= decoded.capacity() * channels => b,
            _ => buffer.insert(SampleBuffer::new(decoded.capacity() as u64, spec)),
        };
        buf.copy_interleaved_ref(decoded);
        let scale = 1.0 / channels as f32;
        mono.extend(
            buf.samples()
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() * scale),
        );
        if mono.len() > limit {
            return Err(fail(format!(
                "longer than {} minutes: cut it into shorter files",
                MAX_FILE_SECONDS / 60.0
            )));
        }
    }
    if mono.is_empty() {
        return Err(fail(if bad_packets > 0 {
            format!("none of its {bad_packets} audio packets could be decoded")
        } else {
            "the file holds no audio samples (cut short?)".into()
        }));
    }
    Ok((mono, rate))
}

/// `samples` at `from` Hz resampled to `to` Hz (rubato's FFT resampler; the same length in
/// time, its delay removed).
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    use rubato::{FftFixedIn, Resampler};
    if from == to {
        return Ok(samples.to_vec());
    }
    let fail = |err: &dyn std::fmt::Display| {
        Error::Data(format!("cannot resample {from} Hz audio to {to} Hz: {err}"))
    };
    // The FFT turns an infinity (or values near float32's limit, summed) into NaN, on which
    // rubato panics: such values are refused first (fuzzing found a sensor value of 1e39).
    if let Some(v) = samples.iter().find(|v| !(v.abs() <= 1e30)) {
        return Err(fail(&format!(
            "a value of {v} is not a finite number of at most 1e30 in size"
        )));
    }
    let chunk = 1024;
    let mut resampler =
        FftFixedIn::<f32>::new(from as usize, to as usize, chunk, 2, 1).map_err(|e| fail(&e))?;
    let want = (samples.len() as u64 * u64::from(to)).div_ceil(u64::from(from)) as usize;
    let delay = resampler.output_delay();
    let mut out: Vec<f32> = Vec::with_capacity(want + delay + chunk);
    let mut rest = samples;
    while rest.len() >= resampler.input_frames_next() {
        let n = resampler.input_frames_next();
        let block = resampler
            .process(&[&rest[..n]], None)
            .map_err(|e| fail(&e))?;
        out.extend_from_slice(&block[0]);
        rest = &rest[n..];
    }
    // The tail, then zeros until the delayed output has caught up.
    let block = resampler
        .process_partial(Some(&[rest]), None)
        .map_err(|e| fail(&e))?;
    out.extend_from_slice(&block[0]);
    while out.len() < want + delay {
        let block = resampler
            .process_partial::<&[f32]>(None, None)
            .map_err(|e| fail(&e))?;
        out.extend_from_slice(&block[0]);
    }
    Ok(out[delay..delay + want].to_vec())
}

/// A file's samples at 16 kHz mono: [`decode`] then [`resample`].
pub fn load(bytes: Vec<u8>, name: &str) -> Result<Vec<f32>> {
    let (samples, rate) = decode(bytes, name)?;
    resample(&samples, rate, SAMPLE_RATE).map_err(|e| Error::Data(format!("{name}: {e}")))
}

/// RMS level of `samples` in dB below full scale (-inf for digital silence).
pub fn level_db(samples: &[f32]) -> f32 {
    let power = samples.iter().map(|s| s * s).sum::<f32>() / samples.len().max(1) as f32;
    10.0 * power.log10()
}

/// The windows of a clip of 16 kHz `samples`: (start in samples, window of exactly
/// `options.window_samples()`). See the module's rule.
pub fn windows(samples: &[f32], options: &AudioOptions) -> Vec<(usize, Vec<f32>)> {
    let len = options.window_samples();
    if samples.len() <= len {
        return vec![(0, centred(samples, len))];
    }
    window_starts(samples.len(), options)
        .into_iter()
        .map(|s| (s, samples[s..s + len].to_vec()))
        .filter(|(_, w)| !options.drop_silence || level_db(w) >= options.silence_db)
        .collect()
}

/// A labelled audio dataset: every file decoded and resampled to 16 kHz mono, whole (cut
/// into windows when a run starts, with the recipe's options: [`AudioSet::cut`]).
#[derive(Debug, Clone, Default)]
pub struct AudioClips {
    /// Class names, indexed by label.
    pub classes: Vec<String>,
    /// Each file's samples.
    pub clips: Vec<Vec<f32>>,
    /// Label of each file.
    pub labels: Vec<u32>,
    /// Each file's name.
    pub names: Vec<String>,
    /// Files left out, with the reason.
    pub skipped: Vec<(String, String)>,
}

impl AudioClips {
    /// No files yet, of `classes`.
    pub fn new(classes: Vec<String>) -> Self {
        Self {
            classes,
            ..Self::default()
        }
    }

    /// Decode `bytes` (the file `name`) and add it as an example of `label`. A file that
    /// cannot be decoded is left out with the reason (in `skipped`), not an error.
    pub fn push_file(&mut self, name: &str, bytes: Vec<u8>, label: u32) {
        match load(bytes, name) {
            Ok(samples) => self.push_samples(name, samples, label),
            Err(err) => self.skipped.push((name.into(), err.to_string())),
        }
    }

    /// Add 16 kHz `samples` (from `name`, e.g. recorded in the page) as an example of `label`.
    pub fn push_samples(&mut self, name: &str, samples: Vec<f32>, label: u32) {
        self.clips.push(samples);
        self.labels.push(label);
        self.names.push(name.into());
    }

    /// Files.
    pub fn len(&self) -> usize {
        self.clips.len()
    }

    /// No files.
    pub fn is_empty(&self) -> bool {
        self.clips.is_empty()
    }

    /// Seconds of audio in all.
    pub fn seconds(&self) -> f64 {
        self.clips.iter().map(Vec::len).sum::<usize>() as f64 / f64::from(SAMPLE_RATE)
    }

    /// Open a folder of class subfolders of audio files, or a `file,label` list. Files that
    /// cannot be decoded are left out with the reason; a class left with none is an error.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &std::path::Path) -> Result<Self> {
        use super::folder::{ImageFolder, Media};
        let listing = ImageFolder::open_any_media(path, Media::Audio)?;
        let mut set = Self::new(listing.classes.clone());
        set.skipped = listing
            .skipped
            .iter()
            .map(|(f, w)| (f.display().to_string(), w.clone()))
            .collect();
        for (file, label) in &listing.items {
            let name = file.display().to_string();
            match std::fs::read(file) {
                Ok(bytes) => set.push_file(&name, bytes, *label),
                Err(err) => set.skipped.push((name, format!("cannot read: {err}"))),
            }
        }
        set.check_classes(&path.display().to_string())?;
        Ok(set)
    }

    /// This set followed by the files of `val` (a validation set of the same classes, by
    /// name), and the split: (this set's files, `val`'s files).
    pub fn with_validation(mut self, val: AudioClips, from: &str) -> Result<(Self, Split)> {
        let train = (0..self.len()).collect();
        let to_train = super::classes::remap(&val.classes, &self.classes)
            .map_err(|e| Error::Data(format!("{from}: {e}")))?;
        let first = self.len();
        for ((clip, label), name) in val.clips.into_iter().zip(val.labels).zip(val.names) {
            self.push_samples(&name, clip, to_train[label as usize]);
        }
        self.skipped.extend(val.skipped);
        let val = (first..self.len()).collect();
        Ok((self, (train, val)))
    }

    /// Refuse fewer than two classes or a class without a single usable file, naming it.
    pub fn check_classes(&self, from: &str) -> Result<()> {
        if self.classes.len() < 2 {
            return Err(Error::Data(format!(
                "{from}: {} class(es); a classifier needs at least 2",
                self.classes.len()
            )));
        }
        for (c, class) in self.classes.iter().enumerate() {
            if !self.labels.contains(&(c as u32)) {
                let why = self.skipped.first().map_or(String::new(), |(n, w)| {
                    format!(" (first file left out: {n}: {w})")
                });
                return Err(Error::Data(format!(
                    "{from}: class {class:?} has no usable audio{why}"
                )));
            }
        }
        Ok(())
    }
}

/// Labelled examples a run trains on: every window of every file of an [`AudioClips`], at
/// 16 kHz. The windows are views into the files (a file's overlapping windows share its
/// samples), so memory is the decoded audio's, however short the stride.
#[derive(Debug, Clone)]
pub struct AudioSet<'a> {
    data: &'a AudioClips,
    /// Class names, indexed by label.
    pub classes: Vec<String>,
    /// Each window: (file index into the [`AudioClips`], start in samples).
    pub windows: Vec<(usize, usize)>,
    /// Label of each window.
    pub labels: Vec<u32>,
    /// Where each window comes from: the file's name, with the window's start ("@12.50s")
    /// when the file was cut.
    pub origins: Vec<String>,
    /// Files left out, with the reason.
    pub skipped: Vec<(String, String)>,
    /// The options the windows were cut with.
    pub options: AudioOptions,
}

impl<'a> AudioSet<'a> {
    /// Cut every file of `data` into windows per `options` (see the module's rule). A class
    /// left without windows, or whose every window is silence, is an error naming it.
    pub fn cut(data: &'a AudioClips, options: &AudioOptions) -> Result<Self> {
        options.validate()?;
        let mut set = Self {
            data,
            classes: data.classes.clone(),
            windows: Vec::new(),
            labels: Vec::new(),
            origins: Vec::new(),
            skipped: data.skipped.clone(),
            options: options.clone(),
        };
        let len = options.window_samples();
        let mut sound = vec![false; data.classes.len()];
        for (file, ((samples, &label), name)) in data
            .clips
            .iter()
            .zip(&data.labels)
            .zip(&data.names)
            .enumerate()
        {
            let before = set.windows.len();
            for start in window_starts(samples.len(), options) {
                let level = level_db(&samples[start..(start + len).min(samples.len())]);
                let silent = level < options.silence_db;
                if silent && options.drop_silence && samples.len() > len {
                    continue;
                }
                sound[label as usize] |= !silent;
                set.origins.push(if samples.len() > len {
                    format!("{name}@{:.2}s", start as f32 / SAMPLE_RATE as f32)
                } else {
                    name.clone()
                });
                set.windows.push((file, start));
                set.labels.push(label);
            }
            if set.windows.len() == before {
                set.skipped.push((
                    name.clone(),
                    format!(
                        "every window is silence (below {} dB; audio.drop_silence)",
                        options.silence_db
                    ),
                ));
            }
        }
        if let Some(c) = sound.iter().position(|s| !s) {
            return Err(Error::Data(format!(
                "every example of class {:?} is silence (below {} dB): was the microphone \
                 muted, or are its files empty?",
                set.classes[c], options.silence_db
            )));
        }
        Ok(set)
    }

    /// Examples.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// No examples.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// Window `row`: `window_samples()` samples (a short clip centred in silence).
    pub fn window(&self, row: usize) -> std::borrow::Cow<'a, [f32]> {
        let (file, start) = self.windows[row];
        let samples: &'a [f32] = &self.data.clips[file];
        let len = self.options.window_samples();
        if samples.len() > len {
            std::borrow::Cow::Borrowed(&samples[start..start + len])
        } else {
            std::borrow::Cow::Owned(centred(samples, len))
        }
    }

    /// The windows of `files` (indices into the [`AudioClips`] this set was cut from).
    pub fn rows_of(&self, files: &[usize]) -> Vec<usize> {
        let mut keep = vec![false; self.data.len()];
        for &f in files {
            if f < keep.len() {
                keep[f] = true;
            }
        }
        (0..self.len())
            .filter(|&r| keep[self.windows[r].0])
            .collect()
    }

    /// Training example `row` varied per `self.options`: shifted in time, scaled, and with
    /// noise from `noise` (training rows of the noise class) or white noise mixed in.
    pub fn augmented(&self, row: usize, noise: &[usize], rng: &mut impl Rng) -> Vec<f32> {
        let o = &self.options;
        let clip = self.window(row);
        let n = clip.len();
        let max_shift = (o.shift * SAMPLE_RATE as f32) as i64;
        let shift = if max_shift > 0 {
            rng.random_range(-max_shift..=max_shift)
        } else {
            0
        };
        let gain = 10f32.powf(rng.random_range(-o.gain_db..=o.gain_db) / 20.0);
        let mut out = vec![0.0f32; n];
        for (i, y) in out.iter_mut().enumerate() {
            let j = i as i64 - shift;
            if (0..n as i64).contains(&j) {
                *y = clip[j as usize] * gain;
            }
        }
        if o.noise_probability > 0.0 && rng.random::<f32>() < o.noise_probability {
            let snr = rng.random_range(o.noise_snr_db[0]..=o.noise_snr_db[1]);
            let others: Vec<usize> = noise.iter().copied().filter(|&r| r != row).collect();
            let bed: Vec<f32> = if others.is_empty() {
                (0..n).map(|_| gaussian(rng)).collect()
            } else {
                self.window(others[rng.random_range(0..others.len())])
                    .into_owned()
            };
            let (signal, level) = (rms(&out), rms(&bed));
            if signal > 0.0 && level > 0.0 {
                let scale = signal / (level * 10f32.powf(snr / 20.0));
                for (y, b) in out.iter_mut().zip(&bed) {
                    *y += scale * b;
                }
            }
        }
        out
    }

    /// Training rows of the noise class (`options.noise_class`), if the data has it.
    pub fn noise_rows(&self, train: &[usize]) -> Vec<usize> {
        match self
            .classes
            .iter()
            .position(|c| *c == self.options.noise_class)
        {
            Some(c) => train
                .iter()
                .copied()
                .filter(|&r| self.labels[r] as usize == c)
                .collect(),
            None => Vec::new(),
        }
    }
}

/// `samples` centred in `len` samples of silence.
fn centred(samples: &[f32], len: usize) -> Vec<f32> {
    let mut window = vec![0.0; len];
    let at = (len - samples.len()) / 2;
    window[at..at + samples.len()].copy_from_slice(samples);
    window
}

/// Where the windows of a clip of `len` samples start (one at 0 for a clip up to a window).
fn window_starts(len: usize, options: &AudioOptions) -> Vec<usize> {
    let window = options.window_samples();
    if len <= window {
        return vec![0];
    }
    let stride = ((options.stride * SAMPLE_RATE as f32).round() as usize).max(1);
    let mut starts: Vec<usize> = (0..=len - window).step_by(stride).collect();
    if starts.last() != Some(&(len - window)) {
        starts.push(len - window);
    }
    starts
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

/// A standard normal draw (Box-Muller).
fn gaussian(rng: &mut impl Rng) -> f32 {
    let u1: f32 = rng.random_range(f32::EPSILON..1.0);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(bits: u16, float: bool, channels: u16, rate: u32, frames: &[f32]) -> Vec<u8> {
        let bytes = usize::from(bits / 8);
        let mut data = Vec::new();
        for &x in frames {
            for _ in 0..channels {
                match (bits, float) {
                    (32, true) => data.extend_from_slice(&x.to_le_bytes()),
                    (8, false) => data.push(((x * 127.0) + 128.0).round() as u8),
                    (16, false) => data.extend_from_slice(&((x * 32767.0) as i16).to_le_bytes()),
                    (24, false) => {
                        data.extend_from_slice(&((x * 8_388_607.0) as i32).to_le_bytes()[..3])
                    }
                    (32, false) => {
                        data.extend_from_slice(&((x * 2_147_483_647.0) as i32).to_le_bytes())
                    }
                    _ => unreachable!(),
                }
            }
        }
        let block = channels * bits / 8;
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&(if float { 3u16 } else { 1 }).to_le_bytes());
        out.extend_from_slice(&channels.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
        out.extend_from_slice(&block.to_le_bytes());
        out.extend_from_slice(&bits.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        let _ = bytes;
        out.extend_from_slice(&data);
        out
    }

    fn tone(rate: u32, hz: f32, seconds: f32) -> Vec<f32> {
        (0..(rate as f32 * seconds) as usize)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin())
            .collect()
    }

    #[test]
    fn every_wav_sample_format_decodes_to_the_same_mono_signal() {
        let x = tone(16_000, 440.0, 0.25);
        for (bits, float) in [
            (8, false),
            (16, false),
            (24, false),
            (32, false),
            (32, true),
        ] {
            for channels in [1, 2, 6] {
                let bytes = wav(bits, float, channels, 16_000, &x);
                let (y, rate) = decode(bytes, "t.wav").unwrap();
                assert_eq!(rate, 16_000);
                assert_eq!(y.len(), x.len(), "{bits} bit, {channels} channels");
                let tol = if bits == 8 { 1e-2 } else { 1e-4 };
                let err = x
                    .iter()
                    .zip(&y)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert!(err < tol, "{bits} bit {channels} ch: max error {err}");
            }
        }
    }

    #[test]
    fn resampling_keeps_duration_and_pitch() {
        for rate in [8_000, 22_050, 44_100, 96_000] {
            let x = tone(rate, 440.0, 1.0);
            let y = resample(&x, rate, 16_000).unwrap();
            assert_eq!(y.len(), 16_000, "{rate} Hz");
            // Compare with the tone made at 16 kHz, away from the edges.
            let want = tone(16_000, 440.0, 1.0);
            let err = want[2000..14000]
                .iter()
                .zip(&y[2000..14000])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(err < 2e-2, "{rate} Hz: max error {err}");
        }
    }

    #[test]
    fn bad_files_are_refused_by_name() {
        let err = decode(Vec::new(), "empty.wav").unwrap_err().to_string();
        assert!(err.contains("empty.wav") && err.contains("empty"), "{err}");
        let err = decode(b"hello, this is text".to_vec(), "notes.wav")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("notes.wav") && err.contains("not an audio file"),
            "{err}"
        );
        let full = wav(16, false, 1, 16_000, &tone(16_000, 440.0, 0.1));
        let err = decode(full[..30].to_vec(), "cut.wav")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cut.wav"), "{err}");
    }

    #[test]
    fn long_files_are_cut_and_silence_is_left_out() {
        let options = AudioOptions::default();
        let mut x = tone(16_000, 300.0, 4.0);
        x[..32_000].fill(0.0); // the first two seconds are silent
        let w = windows(&x, &options);
        let starts: Vec<usize> = w.iter().map(|(s, _)| *s).collect();
        // Windows of 1.5 s every 0.5 s from 0 to 2.5 s; the two within the silence dropped.
        assert_eq!(starts, [16_000, 24_000, 32_000, 40_000]);
        assert!(w.iter().all(|(_, w)| w.len() == 24_000));
        let short = windows(&tone(16_000, 300.0, 0.5), &options);
        assert_eq!(short.len(), 1);
        assert_eq!(short[0].1[..8_000], [0.0; 8_000]); // centred
        let mut data = AudioClips::new(vec!["a".into(), "b".into()]);
        data.push_samples("quiet.wav", vec![0.0; 48_000], 1);
        data.push_samples("tone.wav", tone(16_000, 300.0, 1.0), 0);
        data.push_samples("long.wav", x, 0);
        let err = AudioSet::cut(&data, &options).unwrap_err().to_string();
        assert!(err.contains("\"b\"") && err.contains("silence"), "{err}");
        data.push_samples("voice.wav", tone(16_000, 200.0, 0.5), 1);
        let set = AudioSet::cut(&data, &options).unwrap();
        assert_eq!(set.len(), 1 + 4 + 1);
        let files: Vec<usize> = set.windows.iter().map(|w| w.0).collect();
        assert_eq!(files, [1, 2, 2, 2, 2, 3]);
        assert_eq!(set.origins[1], "long.wav@1.00s");
        assert_eq!(set.rows_of(&[2]), [1, 2, 3, 4]);
        assert_eq!(set.skipped[0].0, "quiet.wav");
    }
}
