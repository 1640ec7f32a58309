// The device's motion sensors (DeviceMotionEvent): accelerometer with gravity (m/s²) and
// gyroscope (rotationRate, °/s turned into rad/s), as rows of a recording. On phones that ask
// (iOS), the permission prompt comes on the first start, from a click.

export const MOTION_CHANNELS = ['acc_x', 'acc_y', 'acc_z', 'gyr_x', 'gyr_y', 'gyr_z'];
const RAD = Math.PI / 180;

export class Motion {
  #handler = null;
  #t0 = null;
  /** Rows [t (s), acc_x, acc_y, acc_z, gyr_x, gyr_y, gyr_z] since start(). */
  rows = [];
  /** Called with each new row. */
  onSample = null;

  static supported() {
    return typeof window !== 'undefined' && 'DeviceMotionEvent' in window;
  }

  /** Listen (asking for permission where the browser wants it). */
  async start() {
    if (!Motion.supported()) throw new Error('this browser has no motion sensors (DeviceMotionEvent)');
    if (typeof DeviceMotionEvent.requestPermission === 'function') {
      const answer = await DeviceMotionEvent.requestPermission();
      if (answer !== 'granted') throw new Error('permission to read the motion sensors was refused');
    }
    this.stop();
    this.rows = [];
    this.#t0 = null;
    this.#handler = (e) => {
      const a = e.accelerationIncludingGravity;
      if (!a || a.x === null) return;
      const r = e.rotationRate ?? {};
      const t = e.timeStamp / 1000;
      if (this.#t0 === null) this.#t0 = t;
      // rotationRate: alpha about z, beta about x, gamma about y.
      const row = [t - this.#t0, a.x, a.y, a.z, (r.beta ?? 0) * RAD, (r.gamma ?? 0) * RAD, (r.alpha ?? 0) * RAD];
      this.rows.push(row);
      this.onSample?.(row);
    };
    window.addEventListener('devicemotion', this.#handler);
  }

  stop() {
    if (this.#handler) window.removeEventListener('devicemotion', this.#handler);
    this.#handler = null;
  }

  get seconds() {
    return this.rows.length ? this.rows.at(-1)[0] : 0;
  }
}

/** Rows as CSV text with a header; `columns` are constant columns on every row ({label:
 *  'walking'} for a class, {speed: 1.5} for a regression's targets). */
export function rowsToCsv(rows, columns = {}) {
  const extra = Object.entries(columns);
  const header = ['time', ...MOTION_CHANNELS, ...extra.map(([name]) => name)].join(',');
  const tail = extra.map(([, value]) => String(value));
  const lines = rows.map((r) => [r[0].toFixed(4), ...r.slice(1).map((v) => v.toFixed(5)), ...tail].join(','));
  return `${header}\n${lines.join('\n')}\n`;
}

const COLOURS = ['#d62728', '#2ca02c', '#1f77b4', '#ff7f0e', '#9467bd', '#8c564b'];

/** Channels of `rows` ([t, ...values]) as lines on `canvas`, each scaled to its own range. */
export function plotRows(canvas, rows, { last } = {}) {
  const ctx = canvas.getContext('2d');
  const w = (canvas.width = canvas.clientWidth || canvas.width);
  const h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const shown = last ? rows.slice(-last) : rows;
  if (shown.length < 2) return;
  const channels = shown[0].length - 1;
  for (let c = 0; c < channels; c++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const r of shown) {
      lo = Math.min(lo, r[c + 1]);
      hi = Math.max(hi, r[c + 1]);
    }
    const span = hi - lo || 1;
    ctx.strokeStyle = COLOURS[c % COLOURS.length];
    ctx.beginPath();
    shown.forEach((r, i) => {
      const x = (i / (shown.length - 1)) * w;
      const y = h - 2 - ((r[c + 1] - lo) / span) * (h - 4);
      if (i) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
    });
    ctx.stroke();
  }
  canvas.dataset.samples = String(rows.length);
}

/** Rows ([t, ...values]) of CSV `text` (the columns after time, up to `label`). */
export function csvToRows(text) {
  const lines = text.trim().split('\n');
  const header = lines[0].split(',');
  const keep = header.map((h, i) => (h !== 'label' && i > 0 ? i : -1)).filter((i) => i > 0);
  return lines.slice(1).map((l) => {
    const cells = l.split(',');
    return [Number(cells[0]), ...keep.map((i) => Number(cells[i]))];
  });
}
