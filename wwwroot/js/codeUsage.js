// A collection's code usage drawn small: patches per code as bars, most used code first (a rank-frequency plot:
// a steep drop means few codes carry most patches; a long flat tail means the codebook is well used).

/** Draws `counts` (patches per code) sorted descending onto the canvas; unused codes leave the right end empty. */
export function drawCodeUsage(canvas, counts) {
  const ctx = canvas.getContext('2d');
  const W = canvas.width, H = canvas.height;
  ctx.clearRect(0, 0, W, H);
  const sorted = [...counts].sort((a, b) => b - a);
  const max = sorted[0] || 0;
  if (!sorted.length || max <= 0) return;
  const pad = 4;
  const bw = (W - 2 * pad) / sorted.length;
  ctx.fillStyle = '#345bd6';
  for (let i = 0; i < sorted.length; i++) {
    if (sorted[i] <= 0) break;
    const bh = Math.max(1, ((H - 2 * pad) * sorted[i]) / max);
    // Bars narrower than a pixel would blur into nothing: each gets at least one.
    ctx.fillRect(pad + i * bw, H - pad - bh, Math.max(1, bw - (bw > 3 ? 1 : 0)), bh);
  }
  ctx.strokeStyle = '#aab2c0';
  ctx.beginPath();
  ctx.moveTo(pad, H - pad + 0.5);
  ctx.lineTo(W - pad, H - pad + 0.5);
  ctx.stroke();
}
