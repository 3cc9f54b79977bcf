import { html, type SafeHtml } from './html.ts';

/**
 * Charts as inline SVG made on the server: no script, no CDN, nothing to load. Colours are SVG
 * attributes (the page's CSP forbids inline styles) and each chart has a title, a description
 * and, beside it in the page, the same numbers as a table for screen readers and print.
 */

const width = 400;
const height = 160;
const padLeft = 44;
const padBottom = 22;
const padTop = 10;

/** A round number at or above `n`, so the axis reads 0 .. 500 rather than 0 .. 473. */
const niceCeiling = (n: number): number => {
  if (n <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(n));
  for (const step of [1, 2, 2.5, 5, 10]) if (n <= step * magnitude) return step * magnitude;
  return 10 * magnitude;
};

export type DailyPoint = { day: string; value: number };

/** Vertical bars, one per day, oldest on the left. */
export const dailyBarChart = (options: {
  id: string;
  title: string;
  description: string;
  days: DailyPoint[];
}): SafeHtml => {
  const { days } = options;
  const top = niceCeiling(Math.max(0, ...days.map((d) => d.value)));
  const plotWidth = width - padLeft - 8;
  const plotHeight = height - padTop - padBottom;
  const slot = plotWidth / Math.max(days.length, 1);
  const barWidth = Math.max(2, slot * 0.7);
  const y = (value: number) => padTop + plotHeight - (value / top) * plotHeight;
  const bars = days.map((d, i) => {
    const x = padLeft + i * slot + (slot - barWidth) / 2;
    const barTop = y(d.value);
    const barHeight = Math.max(d.value > 0 ? 1 : 0, padTop + plotHeight - barTop);
    return html`<rect
      x="${x.toFixed(1)}"
      y="${(padTop + plotHeight - barHeight).toFixed(1)}"
      width="${barWidth.toFixed(1)}"
      height="${barHeight.toFixed(1)}"
      fill="#0b5cad"
      ><title>${d.day}: ${d.value.toLocaleString('en-US')}</title></rect
    >`;
  });
  const first = days[0]?.day ?? '';
  const last = days[days.length - 1]?.day ?? '';
  return html`<svg
    class="chart"
    id="${options.id}"
    viewBox="0 0 ${width} ${height}"
    role="img"
    aria-labelledby="${options.id}-title ${options.id}-desc"
    xmlns="http://www.w3.org/2000/svg"
  >
    <title id="${options.id}-title">${options.title}</title>
    <desc id="${options.id}-desc">${options.description}</desc>
    <line
      x1="${padLeft}"
      y1="${padTop}"
      x2="${width - 8}"
      y2="${padTop}"
      stroke="#d0d7de"
      stroke-dasharray="4 4"
    />
    <line
      x1="${padLeft}"
      y1="${padTop + plotHeight / 2}"
      x2="${width - 8}"
      y2="${padTop + plotHeight / 2}"
      stroke="#d0d7de"
      stroke-dasharray="4 4"
    />
    <line
      x1="${padLeft}"
      y1="${padTop + plotHeight}"
      x2="${width - 8}"
      y2="${padTop + plotHeight}"
      stroke="#57606a"
    />
    <text x="${padLeft - 6}" y="${padTop + 4}" text-anchor="end" font-size="12" fill="#3d444d">
      ${top.toLocaleString('en-US')}
    </text>
    <text
      x="${padLeft - 6}"
      y="${padTop + plotHeight / 2 + 4}"
      text-anchor="end"
      font-size="12"
      fill="#3d444d"
    >
      ${(top / 2).toLocaleString('en-US')}
    </text>
    <text
      x="${padLeft - 6}"
      y="${padTop + plotHeight + 4}"
      text-anchor="end"
      font-size="12"
      fill="#3d444d"
    >
      0
    </text>
    ${bars}
    <text x="${padLeft}" y="${height - 6}" font-size="12" fill="#3d444d">${first}</text>
    <text x="${width - 8}" y="${height - 6}" text-anchor="end" font-size="12" fill="#3d444d">
      ${last}
    </text>
  </svg>`;
};

export type Segment = { label: string; value: number; colour: string };

/** A colour swatch for a legend written in HTML (text in a scaled SVG gets too small on a phone). */
export const swatch = (colour: string): SafeHtml =>
  html`<svg
    class="swatch"
    width="12"
    height="12"
    viewBox="0 0 12 12"
    aria-hidden="true"
    focusable="false"
  >
    <rect width="12" height="12" rx="2" fill="${colour}" />
  </svg>`;

/** One horizontal bar split into segments, each as wide as its share of the whole. */
export const stackedBar = (options: {
  id: string;
  title: string;
  description: string;
  segments: Segment[];
}): SafeHtml => {
  const barHeight = 24;
  const total = options.segments.reduce((sum, s) => sum + s.value, 0);
  let x = 0;
  const rects = options.segments
    .filter((s) => s.value > 0)
    .map((s) => {
      const w = (s.value / total) * width;
      const rect = html`<rect
        x="${x.toFixed(1)}"
        y="0"
        width="${w.toFixed(1)}"
        height="${barHeight}"
        fill="${s.colour}"
        ><title>${s.label}: ${s.value}</title></rect
      >`;
      x += w;
      return rect;
    });
  return html`<svg
      class="chart chart-bar"
      id="${options.id}"
      viewBox="0 0 ${width} ${barHeight}"
      preserveAspectRatio="none"
      role="img"
      aria-labelledby="${options.id}-title ${options.id}-desc"
      xmlns="http://www.w3.org/2000/svg"
    >
      <title id="${options.id}-title">${options.title}</title>
      <desc id="${options.id}-desc">${options.description}</desc>
      ${total === 0 ? html`<rect x="0" y="0" width="${width}" height="${barHeight}" fill="#eaeef2" />` : rects}
    </svg>
    <ul class="legend">
      ${options.segments.map((s) => html`<li>${swatch(s.colour)} ${s.label} <strong>${s.value}</strong></li>`)}
    </ul>`;
};
