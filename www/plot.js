// Small canvas charts, no library (the page's CSP allows only its own scripts): axes with
// "nice" ticks, one line per series, axis labels and a legend. A redraw of a few thousand
// points costs well under a millisecond, so callers simply redraw on every update.

const FONT = '12px system-ui, sans-serif';
const AXIS = '#6b7280';
const GRID = '#e5e7eb';
const TEXT = '#374151';

/** Round numbers for an axis from lo to hi: about `count` ticks at 1, 2 or 5 x 10^k. */
export function niceTicks(lo, hi, count = 5) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi === lo) {
    const d = Math.abs(lo) || 1;
    lo -= d / 2;
    hi += d / 2;
  }
  const raw = (hi - lo) / Math.max(count, 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    ticks.push(Number(v.toPrecision(12)));
  }
  if (ticks[0] > lo) ticks.unshift(ticks[0] - step);
  return ticks;
}

function tickLabel(v, step) {
  if (step >= 1) return String(Math.round(v));
  const digits = Math.min(6, Math.max(0, -Math.floor(Math.log10(step))));
  return v.toFixed(digits);
}

/**
 * Size the canvas's backing store to its displayed size (sharp on HiDPI screens, correct on
 * narrow ones) and return a 2D context in CSS pixels.
 */
function prepare(canvas) {
  const dpr = globalThis.devicePixelRatio || 1;
  const cssWidth = canvas.clientWidth || canvas.width;
  const cssHeight = canvas.clientHeight || canvas.height;
  const w = Math.max(1, Math.round(cssWidth * dpr));
  const h = Math.max(1, Math.round(cssHeight * dpr));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssWidth, cssHeight);
  return { ctx, width: cssWidth, height: cssHeight };
}

/**
 * Draw a line chart.
 *   series: [{name, color, points: [[x, y], ...], dots?, scatter? (dots only, no line),
 *   legend? (the legend's text, '' for none; else the name and the last y)}]
 *   options: {title, xLabel, yLabel, yMin, yMax, yFormat(v) -> string, xInteger (whole-number
 *   x ticks), yFree (the y range follows the data even near 0), empty: 'text when no data'}
 * yMin / yMax fix the y range (e.g. 0..1 for accuracy); otherwise it follows the data.
 */
export function drawChart(canvas, series, options = {}) {
  const { ctx, width, height } = prepare(canvas);
  const { title = '', xLabel = '', yLabel = '', yFormat, empty = 'No data yet' } = options;
  const pad = { left: 52, right: 12, top: title ? 26 : 12, bottom: xLabel ? 40 : 26 };
  const plotW = Math.max(10, width - pad.left - pad.right);
  const plotH = Math.max(10, height - pad.top - pad.bottom);
  ctx.font = FONT;
  ctx.textBaseline = 'middle';

  if (title) {
    ctx.fillStyle = TEXT;
    ctx.textAlign = 'left';
    ctx.font = `600 ${FONT}`;
    ctx.fillText(title, pad.left, 12);
    ctx.font = FONT;
  }

  const all = series.flatMap((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  let xLo = all.length ? Math.min(...all.map((p) => p[0])) : 0;
  let xHi = all.length ? Math.max(...all.map((p) => p[0])) : 1;
  if (xHi === xLo) xHi = xLo + 1;
  let yLo = options.yMin ?? (all.length ? Math.min(...all.map((p) => p[1])) : 0);
  let yHi = options.yMax ?? (all.length ? Math.max(...all.map((p) => p[1])) : 1);
  if (options.yMin == null && !options.yFree && all.length && yLo > 0 && yLo < (yHi - yLo) * 0.5) yLo = 0;
  const yTicks = niceTicks(yLo, yHi, Math.max(2, Math.round(plotH / 45)));
  if (options.yMin == null && yTicks.length) yLo = Math.min(yLo, yTicks[0]);
  if (options.yMax == null && yTicks.length) yHi = Math.max(yHi, yTicks.at(-1));
  if (yHi === yLo) yHi = yLo + 1;
  let xTicks = all.length ? niceTicks(xLo, xHi, Math.max(2, Math.round(plotW / 90))) : [];
  if (options.xInteger && xTicks.length > 1 && xTicks[1] - xTicks[0] < 1) {
    xTicks = [];
    for (let v = Math.ceil(xLo); v <= xHi; v += 1) xTicks.push(v);
  }
  xTicks = xTicks.filter((v) => v >= xLo - 1e-9 && v <= xHi + 1e-9);

  const X = (x) => pad.left + ((x - xLo) / (xHi - xLo)) * plotW;
  const Y = (y) => pad.top + plotH - ((y - yLo) / (yHi - yLo)) * plotH;

  // Grid and tick labels.
  ctx.lineWidth = 1;
  const yStep = yTicks.length > 1 ? yTicks[1] - yTicks[0] : 1;
  ctx.textAlign = 'right';
  for (const v of yTicks) {
    if (v < yLo - 1e-9 || v > yHi + 1e-9) continue;
    const y = Math.round(Y(v)) + 0.5;
    ctx.strokeStyle = GRID;
    ctx.beginPath();
    ctx.moveTo(pad.left, y);
    ctx.lineTo(pad.left + plotW, y);
    ctx.stroke();
    ctx.fillStyle = AXIS;
    ctx.fillText(yFormat ? yFormat(v) : tickLabel(v, yStep), pad.left - 6, y);
  }
  const xStep = xTicks.length > 1 ? xTicks[1] - xTicks[0] : 1;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (const v of xTicks) {
    const x = Math.round(X(v)) + 0.5;
    ctx.strokeStyle = AXIS;
    ctx.beginPath();
    ctx.moveTo(x, pad.top + plotH);
    ctx.lineTo(x, pad.top + plotH + 4);
    ctx.stroke();
    ctx.fillStyle = AXIS;
    ctx.fillText(tickLabel(v, xStep), x, pad.top + plotH + 6);
  }

  // Axes.
  ctx.strokeStyle = AXIS;
  ctx.beginPath();
  ctx.moveTo(pad.left + 0.5, pad.top);
  ctx.lineTo(pad.left + 0.5, pad.top + plotH + 0.5);
  ctx.lineTo(pad.left + plotW, pad.top + plotH + 0.5);
  ctx.stroke();

  // Axis labels.
  ctx.fillStyle = TEXT;
  if (xLabel) {
    ctx.textAlign = 'center';
    ctx.textBaseline = 'bottom';
    ctx.fillText(xLabel, pad.left + plotW / 2, height - 2);
  }
  if (yLabel) {
    ctx.save();
    ctx.translate(12, pad.top + plotH / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText(yLabel, 0, 0);
    ctx.restore();
  }

  if (!all.length) {
    ctx.fillStyle = AXIS;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText(empty, pad.left + plotW / 2, pad.top + plotH / 2);
    return;
  }

  // Lines (clipped to the plot area).
  ctx.save();
  ctx.beginPath();
  ctx.rect(pad.left, pad.top - 2, plotW + 2, plotH + 4);
  ctx.clip();
  for (const s of series) {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (!pts.length) continue;
    ctx.strokeStyle = s.color;
    ctx.fillStyle = s.color;
    ctx.lineWidth = 2;
    ctx.lineJoin = 'round';
    if (!s.scatter) {
      ctx.beginPath();
      pts.forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
      ctx.stroke();
    }
    if (s.dots || s.scatter || pts.length === 1) {
      for (const [x, y] of pts) {
        ctx.beginPath();
        ctx.arc(X(x), Y(y), s.scatter ? 2 : 3, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
  }
  ctx.restore();

  // Legend (top right), only for series with points.
  const shown = series.filter((s) => s.points.length && s.legend !== '');
  ctx.textAlign = 'left';
  ctx.textBaseline = 'middle';
  let lx = pad.left + plotW;
  const ly = title ? 12 : pad.top + 10;
  for (const s of [...shown].reverse()) {
    const last = s.points.at(-1)[1];
    const label = s.legend ?? `${s.name} ${yFormat ? yFormat(last) : last.toFixed(3)}`;
    const w = ctx.measureText(label).width;
    lx -= w + 22;
    ctx.fillStyle = s.color;
    ctx.fillRect(lx, ly - 2, 12, 4);
    ctx.fillStyle = TEXT;
    ctx.fillText(label, lx + 16, ly);
    lx -= 8;
  }
}

/** One series against its index: the small plot the first demo used. */
export function drawSeries(canvas, values, { color = '#0a64d6', label = '' } = {}) {
  drawChart(canvas, [{ name: label, color, points: values.map((v, i) => [i + 1, v]) }], {
    xLabel: 'step',
    yLabel: label,
  });
}
