/**
 * Self-contained SVG charts for reports (no dependency, no script, readable in any browser or
 * Markdown viewer): line charts of series over x values, and heat maps of a matrix.
 */
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** A short label for a number: 3 significant digits, exponent form for very large or small ones. */
export function formatTick(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e5 || a < 1e-3 ? v.toExponential(1) : Number(v.toPrecision(3)).toString();
}

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

export interface Series {
  name: string;
  /** y values, one per x (NaN leaves a gap). */
  y: readonly number[];
  /** x values (default 0, 1, 2, ...). */
  x?: readonly number[];
  dashed?: boolean;
  /** Palette index (default: the series' position). */
  color?: number;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  /** Category labels for x = 0, 1, ... instead of numeric ticks. */
  xCategories?: readonly string[];
  width?: number;
  height?: number;
}

/** A line chart with axes, ticks, a legend, and markers at the points. */
export function lineChart(options: LineChartOptions): string {
  const width = options.width ?? 640;
  const height = options.height ?? 400;
  const m = { left: 64, right: 180, top: 36, bottom: 52 };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const points = options.series.flatMap((s) => s.y.map((y, i) => [s.x?.[i] ?? i, y] as const)).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = points.map(([x]) => x);
  const ys = points.map(([, y]) => y);
  const [x0, x1] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
  let [y0, y1] = ys.length ? [Math.min(...ys), Math.max(...ys)] : [0, 1];
  if (y1 === y0) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  const sx = (x: number): number => m.left + (x1 === x0 ? pw / 2 : ((x - x0) / (x1 - x0)) * pw);
  const sy = (y: number): number => m.top + ph - ((y - y0) / (y1 - y0)) * ph;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${m.left + pw / 2}" y="20" text-anchor="middle" font-size="14">${escape(options.title)}</text>`,
    `<line x1="${m.left}" y1="${m.top + ph}" x2="${m.left + pw}" y2="${m.top + ph}" stroke="black"/>`,
    `<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + ph}" stroke="black"/>`,
  ];
  for (const t of niceTicks(y0, y1)) {
    out.push(`<line x1="${m.left - 4}" y1="${sy(t)}" x2="${m.left + pw}" y2="${sy(t)}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${m.left - 8}" y="${sy(t) + 4}" text-anchor="end">${formatTick(t)}</text>`);
  }
  const xTicks = options.xCategories ? options.xCategories.map((label, i) => [i, label] as const) : niceTicks(x0, x1).map((t) => [t, formatTick(t)] as const);
  for (const [t, label] of xTicks) {
    out.push(`<line x1="${sx(t)}" y1="${m.top + ph}" x2="${sx(t)}" y2="${m.top + ph + 4}" stroke="black"/>`);
    out.push(`<text x="${sx(t)}" y="${m.top + ph + 18}" text-anchor="middle">${escape(label)}</text>`);
  }
  out.push(`<text x="${m.left + pw / 2}" y="${height - 10}" text-anchor="middle">${escape(options.xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${escape(options.yLabel)}</text>`);
  options.series.forEach((s, k) => {
    const color = PALETTE[(s.color ?? k) % PALETTE.length]!;
    const pts = s.y.map((y, i) => [s.x?.[i] ?? i, y] as const);
    let d = "";
    let pen = false;
    for (const [x, y] of pts) {
      if (!Number.isFinite(y) || !Number.isFinite(x)) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)} `;
      pen = true;
    }
    out.push(`<path d="${d.trim()}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ""}/>`);
    if (pts.length <= 60) {
      for (const [x, y] of pts) if (Number.isFinite(y)) out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${color}"/>`);
    }
    const ly = m.top + 10 + k * 18;
    out.push(`<line x1="${m.left + pw + 12}" y1="${ly}" x2="${m.left + pw + 36}" y2="${ly}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ""}/>`);
    out.push(`<text x="${m.left + pw + 42}" y="${ly + 4}">${escape(s.name)}</text>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

export interface HeatmapOptions {
  title: string;
  rows: readonly string[];
  columns: readonly string[];
  /** values[r][c]; NaN cells are grey. */
  values: readonly (readonly number[])[];
  /** Cell labels' number format (default formatTick). */
  format?: (v: number) => string;
}

/** A heat map: diverging blue (negative) to red (positive) around 0, each cell labelled. */
export function heatmap(options: HeatmapOptions): string {
  const cell = 64;
  const left = 140;
  const top = 60;
  const width = left + options.columns.length * cell + 20;
  const height = top + options.rows.length * 28 + 20;
  const finite = options.values.flat().filter(Number.isFinite);
  const scale = Math.max(1e-12, ...finite.map(Math.abs));
  const fmt = options.format ?? formatTick;
  const color = (v: number): string => {
    if (!Number.isFinite(v)) return "#d9d9d9";
    const t = Math.min(1, Math.abs(v) / scale);
    const c = Math.round(255 * (1 - t));
    return v >= 0 ? `rgb(255,${c},${c})` : `rgb(${c},${c},255)`;
  };
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${escape(options.title)}</text>`,
  ];
  options.columns.forEach((c, j) => out.push(`<text x="${left + j * cell + cell / 2}" y="${top - 10}" text-anchor="middle">${escape(c)}</text>`));
  options.rows.forEach((r, i) => {
    out.push(`<text x="${left - 8}" y="${top + i * 28 + 18}" text-anchor="end">${escape(r)}</text>`);
    options.columns.forEach((_, j) => {
      const v = options.values[i]?.[j] ?? Number.NaN;
      out.push(`<rect x="${left + j * cell}" y="${top + i * 28}" width="${cell - 2}" height="26" fill="${color(v)}"/>`);
      out.push(`<text x="${left + j * cell + cell / 2 - 1}" y="${top + i * 28 + 17}" text-anchor="middle">${Number.isFinite(v) ? escape(fmt(v)) : "–"}</text>`);
    });
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
