// Image decoding for worker.js, in a worker of its own: fetching a URL, reading a Blob and
// createImageBitmap each finish in a later turn of the event loop, and the training worker's
// loop is busy while the core computes a batch. Here those turns keep coming, so the images the
// core asked for ahead decode during the computation, and each arrives in the training worker
// as one message. Messages: `{id, source}` in (a URL, a Blob or an ImageBitmap);
// `{id, width, height, data}` (RGBA bytes, transferred) or `{id, error}` out.

// No colour-space conversion or premultiplication, so the pixels are the file's, as natively.
async function decode(source) {
  let blob = source;
  if (!(source instanceof Blob) && !(source instanceof ImageBitmap)) {
    const response = await fetch(source);
    if (!response.ok) throw new Error(`HTTP ${response.status} fetching ${source}`);
    blob = await response.blob();
  }
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const { width, height } = bitmap;
  // The core's limit (data/image.rs's MAX_PIXELS), before a canvas of that size is made.
  if (width * height > 64_000_000) {
    bitmap.close();
    throw new Error(`${width}x${height} pixels (${Math.round(width * height / 1e6)} megapixels) is more than the 64 megapixels an image may have; scale it down first`);
  }
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  return { width, height, data: context.getImageData(0, 0, width, height).data };
}

self.onmessage = async ({ data: { id, source } }) => {
  try {
    const { width, height, data } = await decode(source);
    self.postMessage({ id, width, height, data }, [data.buffer]);
  } catch (err) {
    self.postMessage({ id, error: err?.message ?? String(err) });
  }
};
