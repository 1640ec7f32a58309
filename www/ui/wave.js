// Audio examples as thumbnails: a waveform drawn on a small canvas that plays the clip on
// click. Recorded samples are wrapped in a WAV to play; a file's waveform is drawn from the
// browser's own decoding, for display only (the model's samples come from the core's decoder).

import { wav16 } from '../tabtune.js';

/** 16-bit PCM WAV of mono float `samples` at `rate`, to play. */
export function wavBlob(samples, rate) {
  return new Blob([wav16(samples, rate)], { type: 'audio/wav' });
}

function draw(canvas, samples) {
  const g = canvas.getContext('2d');
  const { width, height } = canvas;
  g.clearRect(0, 0, width, height);
  g.fillStyle = getComputedStyle(canvas).color || '#357';
  const per = Math.max(1, Math.floor(samples.length / width));
  for (let x = 0; x < width; x++) {
    let peak = 0;
    for (let i = x * per; i < Math.min(samples.length, (x + 1) * per); i++) peak = Math.max(peak, Math.abs(samples[i]));
    const h = Math.max(1, peak * height);
    g.fillRect(x, (height - h) / 2, 1, h);
  }
}

let context = null;
/** A thumbnail of `item` ({samples, rate} or {source}) named `label`: click to play. */
export function audioThumb(item, label, urlOf) {
  const canvas = document.createElement('canvas');
  canvas.width = 96;
  canvas.height = 28;
  canvas.className = 'wave';
  canvas.title = `${label}: click to play`;
  canvas.setAttribute('role', 'button');
  canvas.setAttribute('aria-label', `play a ${label} example`);
  const url = urlOf(item.samples ? wavBlob(item.samples, item.rate) : item.source);
  canvas.addEventListener('click', () => new Audio(url).play().catch(() => {}));
  if (item.samples) {
    draw(canvas, item.samples);
  } else {
    fetch(url)
      .then((r) => r.arrayBuffer())
      .then((bytes) => (context ??= new OfflineAudioContext(1, 1, 16000)).decodeAudioData(bytes))
      .then((audio) => draw(canvas, audio.getChannelData(0)))
      .catch(() => {});
  }
  return canvas;
}
