// A minimal line plot on a canvas: no chart library is needed for one series that grows by a
// point per step, and a canvas redraw costs well under a millisecond at these sizes.

/** Draw `values` as a line, scaled to the canvas, with min/max labels. */
export function drawSeries(canvas, values, { color = '#0a64d6', label = '' } = {}) {
  const ctx = canvas.getContext('2d');
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  if (values.length === 0) return;
  const pad = 28;
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const span = hi - lo || 1;
  const x = (i) => pad + (i / Math.max(values.length - 1, 1)) * (width - 2 * pad);
  const y = (v) => height - pad - ((v - lo) / span) * (height - 2 * pad);
  ctx.strokeStyle = '#ccc';
  ctx.strokeRect(pad, pad, width - 2 * pad, height - 2 * pad);
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.beginPath();
  values.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
  ctx.stroke();
  ctx.fillStyle = '#555';
  ctx.font = '12px system-ui, sans-serif';
  ctx.fillText(`${label} ${hi.toFixed(3)}`, pad + 4, pad - 8);
  ctx.fillText(`${lo.toFixed(3)} (step ${values.length})`, pad + 4, height - 8);
}
