//! Image tensors: the exact arithmetic torchvision's `ToTensor` + `Normalize` do, so numbers
//! match PyTorch's to float rounding.

/// Interleaved 8-bit RGB (`[h, w, 3]`, row-major) to planar `[3, h, w]` floats,
/// `(v / 255 - mean[c]) / std[c]`.
pub fn rgb8_to_chw(
    rgb: &[u8],
    width: usize,
    height: usize,
    mean: [f32; 3],
    std: [f32; 3],
) -> Vec<f32> {
    assert_eq!(
        rgb.len(),
        width * height * 3,
        "rgb buffer is not {width}x{height}x3"
    );
    let plane = width * height;
    let mut out = vec![0.0f32; 3 * plane];
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (px[c] as f32 / 255.0 - mean[c]) / std[c];
        }
    }
    out
}

/// ImageNet statistics torchvision's classifiers were trained with.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// See [`IMAGENET_MEAN`].
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_and_normalisation() {
        let rgb = [255u8, 0, 51, 0, 255, 102];
        let out = rgb8_to_chw(&rgb, 2, 1, [0.0; 3], [1.0; 3]);
        assert_eq!(out, vec![1.0, 0.0, 0.0, 1.0, 0.2, 0.4]);
        let out = rgb8_to_chw(&rgb, 2, 1, IMAGENET_MEAN, IMAGENET_STD);
        assert!((out[0] - (1.0 - 0.485) / 0.229).abs() < 1e-6);
    }
}
