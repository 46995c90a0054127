// Line charts (uPlot, from npm via wwwroot/lib) for the job page. Each chart's figure carries
// data-points = the number of x values drawn, which the browser tests watch grow live.
// uPlot is the minified build loaded by index.html (global `uPlot`).
import { h, fmtNumber } from './ui.js';

const COLORS = ['#345bd6', '#d6452f', '#1f9d55', '#b7791f', '#805ad5', '#2b8a9a'];

export class LineChart {
  /**
   * @param {string} title visible caption
   * @param {{label: string}[]} series one entry per y series
   * @param {{xLabel?: string, logY?: boolean}} options
   */
  constructor(title, series, options = {}) {
    this.series = series;
    this.xs = [];
    this.ys = series.map(() => []);
    this.figure = h('figure', { class: 'chart', 'data-points': '0', 'data-chart': title },
      h('figcaption', {}, title));
    this.holder = h('div', { class: 'chart-plot' });
    this.summary = h('p', { class: 'chart-summary' }, 'no data yet');
    this.figure.append(this.holder, this.summary);
    const opts = {
      width: 320, height: 180,
      cursor: { drag: { x: true, y: false } },
      legend: { show: series.length > 1, live: false },
      scales: { x: { time: false }, y: options.logY ? { distr: 3 } : {} },
      axes: [
        { label: options.xLabel || 'step', size: 40, labelSize: 18, font: '11px system-ui', labelFont: '11px system-ui' },
        { size: 56, font: '11px system-ui', values: (u, vals) => vals.map((v) => fmtNumber(v, 3)) },
      ],
      series: [{ label: options.xLabel || 'step' }, ...series.map((s, i) => ({
        label: s.label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true,
        points: { show: (u) => u.data[0].length < 40, size: 5 },
        value: (u, v) => fmtNumber(v, 4),
      }))],
    };
    if (!window.uPlot) throw new Error('The chart library (/lib/uplot/uPlot.iife.min.js) did not load; rebuild the app (see README).');
    this.plot = new window.uPlot(opts, [[], ...series.map(() => [])], this.holder);
    this.holder.setAttribute('role', 'img');
    this.holder.setAttribute('aria-label', title + ' chart');
    this.resizer = new ResizeObserver(() => this.resize());
    this.resizer.observe(this.figure);
  }

  resize() {
    const width = Math.max(200, Math.floor(this.figure.clientWidth - 4));
    if (width !== this.plot.width) this.plot.setSize({ width, height: 180 });
  }

  /** Replaces the data: xs ascending, ys[i][j] = series i at xs[j] (null = gap). */
  setData(xs, ys) {
    this.xs = xs;
    this.ys = ys;
    this.plot.setData([xs, ...ys]);
    this.figure.dataset.points = String(xs.length);
    const last = ys.map((s, i) => {
      for (let j = s.length - 1; j >= 0; j--) if (s[j] !== null && s[j] !== undefined) return `${this.series[i].label} ${fmtNumber(s[j], 4)}`;
      return null;
    }).filter(Boolean);
    this.summary.textContent = xs.length ? `${xs.length} points; latest at step ${xs[xs.length - 1]}: ${last.join(', ')}` : 'no data yet';
  }

  destroy() {
    this.resizer.disconnect();
    this.plot.destroy();
  }
}
