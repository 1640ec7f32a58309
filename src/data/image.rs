//! Image input: decode (PNG, JPEG, WebP, GIF, BMP; grayscale and alpha handled), resize the
//! shorter side, centre-crop, normalise — the torchvision evaluation transform, with the same
//! arithmetic natively and in the browser (which hands over RGBA pixels it decoded itself).

use image::{DynamicImage, RgbImage, RgbaImage};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// ImageNet statistics torchvision's classifiers were trained with.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// See [`IMAGENET_MEAN`].
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The evaluation transform: `Resize(resize)` (shorter side), `CenterCrop(crop)`, `Normalize`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Preprocess {
    /// Length of the shorter side after resizing.
    pub resize: u32,
    /// Side of the square centre crop fed to the model.
    pub crop: u32,
    /// Per-channel mean subtracted after scaling to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    pub std: [f32; 3],
}

impl Default for Preprocess {
    fn default() -> Self {
        Self {
            resize: 256,
            crop: 224,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        }
    }
}

impl Preprocess {
    /// Floats per image, `3 * crop * crop`.
    pub fn len(&self) -> usize {
        3 * (self.crop * self.crop) as usize
    }

    /// True for a zero-sized crop (never valid).
    pub fn is_empty(&self) -> bool {
        self.crop == 0
    }

    /// `[3, crop, crop]` floats of a decoded image: the evaluation transform, or with `augment`
    /// a random resized crop (area 25-100%, aspect 3/4-4/3) and a horizontal flip half the time.
    pub fn rgb(&self, image: RgbImage, augment: Option<&mut ChaCha8Rng>) -> Vec<f32> {
        let rgb = match augment {
            None => resize_centre_crop(image, self.resize, self.crop),
            Some(rng) => random_resized_crop(&image, self.crop, rng),
        };
        rgb8_to_chw(
            rgb.as_raw(),
            self.crop as usize,
            self.crop as usize,
            self.mean,
            self.std,
        )
    }
}

/// The image file at `path`, decoded as [`decode`] does.
#[cfg(not(target_arch = "wasm32"))]
pub fn open(path: &str) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::Data(format!("{path}: {e}")))?;
    decode(&bytes, path)
}

/// Decode an encoded image (PNG, JPEG, WebP, GIF, BMP) to RGB: grayscale is replicated to three
/// channels, alpha dropped as PIL's `convert("RGB")` does, so a transparent PNG gives what
/// torchvision would see. The error names the item.
/// EXIF orientation is applied (the image as a viewer shows it, as the browser's
/// `createImageBitmap` gives it), and an image larger than [`MAX_PIXELS`] is refused from its
/// header, before anything is decoded.
pub fn decode(bytes: &[u8], name: &str) -> Result<RgbImage> {
    let unreadable =
        |err: image::ImageError| Error::Data(format!("{name}: not a readable image ({err})"));
    if bytes.is_empty() {
        return Err(Error::Data(format!(
            "{name}: an empty file (0 bytes), not an image"
        )));
    }
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|err| Error::Data(format!("{name}: {err}")))?;
    if reader.format().is_none() {
        return Err(Error::Data(format!(
            "{name}: not a readable image (its bytes are not PNG, JPEG, WebP, GIF or BMP)"
        )));
    }
    let mut decoder = reader.into_decoder().map_err(unreadable)?;
    let (width, height) = image::ImageDecoder::dimensions(&decoder);
    check_pixels(width, height, name)?;
    let orientation = image::ImageDecoder::orientation(&mut decoder)
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(unreadable)?;
    image.apply_orientation(orientation);
    Ok(image.to_rgb8())
}

/// The most pixels an image may have (8,000 x 8,000): a model sees 224 x 224, and a
/// decompression bomb (a few bytes that decode to gigabytes) is refused by its header.
pub const MAX_PIXELS: u64 = 64_000_000;

/// `width` x `height` is at most [`MAX_PIXELS`], else an error naming `name` and its size.
pub fn check_pixels(width: u32, height: u32, name: &str) -> Result<()> {
    let pixels = width as u64 * height as u64;
    if pixels > MAX_PIXELS {
        return Err(Error::Data(format!(
            "{name}: {width}x{height} pixels ({:.0} megapixels) is more than the {} megapixels \
             an image may have; scale it down first",
            pixels as f64 / 1e6,
            MAX_PIXELS / 1_000_000
        )));
    }
    Ok(())
}

/// RGB of RGBA pixels decoded by the browser, checking the buffer's size.
pub fn from_rgba(rgba: Vec<u8>, width: u32, height: u32, name: &str) -> Result<RgbImage> {
    check_pixels(width, height, name)?;
    let image = RgbaImage::from_raw(width, height, rgba)
        .ok_or_else(|| Error::Data(format!("{name}: pixel buffer is not {width}x{height} RGBA")))?;
    Ok(DynamicImage::ImageRgba8(image).to_rgb8())
}

/// torchvision's `RandomResizedCrop(side, scale=(0.25, 1), ratio=(3/4, 4/3))` then
/// `RandomHorizontalFlip()`: up to ten tries for a crop that fits, else the centre square.
pub fn random_resized_crop(image: &RgbImage, side: u32, rng: &mut impl Rng) -> RgbImage {
    let (w, h) = image.dimensions();
    let area = (w * h) as f64;
    let mut region = None;
    for _ in 0..10 {
        let target = area * rng.random_range(0.25..=1.0);
        let ratio = rng
            .random_range((3.0f64 / 4.0).ln()..=(4.0f64 / 3.0).ln())
            .exp();
        let cw = (target * ratio).sqrt().round() as u32;
        let ch = (target / ratio).sqrt().round() as u32;
        if cw > 0 && ch > 0 && cw <= w && ch <= h {
            region = Some((
                rng.random_range(0..=w - cw),
                rng.random_range(0..=h - ch),
                cw,
                ch,
            ));
            break;
        }
    }
    let (x, y, cw, ch) = region.unwrap_or_else(|| {
        let s = w.min(h);
        ((w - s) / 2, (h - s) / 2, s, s)
    });
    let mut out = resample(image, (x, y, cw, ch), (side, side), (0, 0, side, side));
    if rng.random_bool(0.5) {
        image::imageops::flip_horizontal_in_place(&mut out);
    }
    out
}

/// Bilinear resize of the shorter side to `resize` (the longer as `int(resize * long / short)`,
/// as torchvision computes it), then the centred `crop` square (offset `round((n - crop) / 2)`).
/// Images smaller than the crop after resizing are scaled up to it.
pub fn resize_centre_crop(image: RgbImage, resize: u32, crop: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    let short = w.min(h).max(1);
    let resize = resize.max(crop);
    let scale = |side: u32| ((resize as u64 * side as u64) / short as u64).max(1) as u32;
    let (nw, nh) = if w <= h {
        (resize, scale(h))
    } else {
        (scale(w), resize)
    };
    let left = ((nw - crop) as f64 / 2.0).round() as u32;
    let top = ((nh - crop) as f64 / 2.0).round() as u32;
    resample(&image, (0, 0, w, h), (nw, nh), (left, top, crop, crop))
}

/// The `window` (x, y, width, height) of the `region` (x, y, width, height) of `image`
/// resized to `size` with the `image` package's `Triangle` filter, as
/// `crop_imm(&resize(&crop_imm(image, region), size), window)` gives it, to the bit, but
/// computing only the window's pixels in one pass per axis on 8-bit RGB: `image`'s `resize` is
/// generic, so it is built in this crate at the browser module's size-first opt-level, and
/// through four-channel float pixels it took milliseconds for a 28x28 digit made 256x256.
pub fn resample(
    image: &RgbImage,
    region: (u32, u32, u32, u32),
    size: (u32, u32),
    window: (u32, u32, u32, u32),
) -> RgbImage {
    let (rx, ry, rw, rh) = region;
    let (wx, wy, ww, wh) = window;
    let (width, src) = (image.width() as usize, image.as_raw());
    let at =
        |x: u32, y: u32, c: usize| src[((ry + y) as usize * width + (rx + x) as usize) * 3 + c];
    if rw == 0 || rh == 0 {
        return RgbImage::new(ww, wh);
    }
    if size == (rw, rh) {
        return RgbImage::from_fn(ww, wh, |x, y| {
            image::Rgb([0, 1, 2].map(|c| at(wx + x, wy + y, c)))
        });
    }
    // Rows first (image's `vertical_sample`: float sums, no rounding), over the region's width.
    let mut rows = vec![0f32; wh as usize * rw as usize * 3];
    for y in 0..wh {
        let (first, weights) = triangle_weights(rh, size.1, wy + y);
        let out = &mut rows[(y * rw) as usize * 3..][..rw as usize * 3];
        for x in 0..rw {
            for c in 0..3 {
                let mut t = 0f32;
                for (i, w) in weights.iter().enumerate() {
                    t += at(x, first + i as u32, c) as f32 * w;
                }
                out[x as usize * 3 + c] = t;
            }
        }
    }
    // Then columns (`horizontal_sample`: clamped to 0..=255 and rounded).
    let mut out = vec![0u8; ww as usize * wh as usize * 3];
    for x in 0..ww {
        let (first, weights) = triangle_weights(rw, size.0, wx + x);
        for y in 0..wh as usize {
            let row = &rows[y * rw as usize * 3..];
            for c in 0..3 {
                let mut t = 0f32;
                for (i, w) in weights.iter().enumerate() {
                    t += row[(first as usize + i) * 3 + c] * w;
                }
                out[(y * ww as usize + x as usize) * 3 + c] = t.clamp(0.0, 255.0).round() as u8;
            }
        }
    }
    RgbImage::from_raw(ww, wh, out).expect("ww x wh x 3 bytes")
}

/// The first input pixel and the normalised weights of output pixel `out` when `input` pixels
/// become `output`, as the `image` package's `Triangle` filter computes them (same f32 steps).
fn triangle_weights(input: u32, output: u32, out: u32) -> (u32, Vec<f32>) {
    let ratio = input as f32 / output as f32;
    let sratio = if ratio < 1.0 { 1.0 } else { ratio };
    let support = sratio;
    let centre = (out as f32 + 0.5) * ratio;
    let left = ((centre - support).floor() as i64).clamp(0, input as i64 - 1);
    let right = ((centre + support).ceil() as i64).clamp(left + 1, input as i64);
    let centre = centre - 0.5;
    let mut weights: Vec<f32> = (left..right)
        .map(|i| {
            let x = ((i as f32 - centre) / sratio).abs();
            if x < 1.0 { 1.0 - x } else { 0.0 }
        })
        .collect();
    let sum = weights.iter().fold(0f32, |a, w| a + w);
    for w in &mut weights {
        *w /= sum;
    }
    (left as u32, weights)
}

/// Interleaved 8-bit RGB (`[h, w, 3]`, row-major) to planar `[3, h, w]` floats,
/// `(v / 255 - mean[c]) / std[c]` — torchvision's `ToTensor` + `Normalize`.
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

    use image::imageops::FilterType;
    use rand::SeedableRng;

    /// `resample` against the `image` package's own crop, resize and crop.
    fn by_image(
        img: &RgbImage,
        r: (u32, u32, u32, u32),
        size: (u32, u32),
        w: (u32, u32, u32, u32),
    ) -> RgbImage {
        let region = image::imageops::crop_imm(img, r.0, r.1, r.2, r.3).to_image();
        let resized = image::imageops::resize(&region, size.0, size.1, FilterType::Triangle);
        image::imageops::crop_imm(&resized, w.0, w.1, w.2, w.3).to_image()
    }

    #[test]
    fn resample_is_the_image_packages_resize_to_the_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for (iw, ih) in [
            (28, 28),
            (300, 200),
            (211, 397),
            (1024, 768),
            (3, 5),
            (256, 256),
        ] {
            let img = RgbImage::from_fn(iw, ih, |_, _| image::Rgb(rng.random()));
            // The evaluation transform's sizes, up and down.
            for (resize, crop) in [(256, 224), (224, 224), (36, 32), (2, 1)] {
                let short = iw.min(ih);
                let scale =
                    |side: u32| ((resize as u64 * side as u64) / short as u64).max(1) as u32;
                let (nw, nh) = if iw <= ih {
                    (resize, scale(ih))
                } else {
                    (scale(iw), resize)
                };
                let window = ((nw - crop) / 2, (nh - crop) / 2, crop, crop);
                let whole = (0, 0, iw, ih);
                let ours = resample(&img, whole, (nw, nh), window);
                assert!(
                    ours == by_image(&img, whole, (nw, nh), window),
                    "{iw}x{ih} -> {nw}x{nh}"
                );
            }
            // Random regions to a square (the augmentation's crop).
            for _ in 0..4 {
                let (cw, ch) = (rng.random_range(1..=iw), rng.random_range(1..=ih));
                let r = (
                    rng.random_range(0..=iw - cw),
                    rng.random_range(0..=ih - ch),
                    cw,
                    ch,
                );
                let ours = resample(&img, r, (224, 224), (0, 0, 224, 224));
                assert!(
                    ours == by_image(&img, r, (224, 224), (0, 0, 224, 224)),
                    "{r:?}"
                );
            }
        }
    }

    #[test]
    fn shorter_side_then_centre_crop() {
        // 300x200 -> 384x256 -> crop at (80, 16); a marker column at x = 150 lands at 192 - 80.
        let mut img = RgbImage::from_pixel(300, 200, image::Rgb([10, 20, 30]));
        for y in 0..200 {
            img.put_pixel(150, y, image::Rgb([250, 20, 30]));
        }
        let out = resize_centre_crop(img, 256, 224);
        assert_eq!(out.dimensions(), (224, 224));
        let row: Vec<u8> = (0..224).map(|x| out.get_pixel(x, 100)[0]).collect();
        let peak = row.iter().enumerate().max_by_key(|(_, v)| **v).unwrap().0;
        assert!((111..=113).contains(&peak), "marker at {peak}");
        assert_eq!(*out.get_pixel(5, 5), image::Rgb([10, 20, 30]));
    }

    #[test]
    fn augmentation_is_seeded_and_changes_the_crop() {
        let image = RgbImage::from_fn(300, 200, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let pre = Preprocess::default();
        let draw = |seed| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            pre.rgb(image.clone(), Some(&mut rng))
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
        assert_eq!(draw(1).len(), pre.len());
        let plain = pre.rgb(image.clone(), None);
        assert_ne!(draw(1), plain);
    }

    #[test]
    fn grayscale_alpha_and_tiny_images_become_full_crops() {
        let p = Preprocess::default();
        let mut png = Vec::new();
        DynamicImage::ImageLumaA8(image::GrayAlphaImage::from_pixel(
            28,
            28,
            image::LumaA([255, 0]),
        ))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
        let x = p.rgb(decode(&png, "digit.png").unwrap(), None);
        assert_eq!(x.len(), p.len());
        // White in all three planes, whatever the alpha says.
        let plane = 224 * 224;
        for c in 0..3 {
            assert!((x[c * plane] - (1.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]).abs() < 1e-5);
        }
        let err = decode(b"not an image", "notes.txt")
            .unwrap_err()
            .to_string();
        assert!(err.contains("notes.txt"), "{err}");
        let err = from_rgba(vec![0; 10], 2, 2, "frame")
            .unwrap_err()
            .to_string();
        assert!(err.contains("2x2 RGBA"), "{err}");
    }
}
