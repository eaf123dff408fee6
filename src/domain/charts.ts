/** Small SVG pictures: cost against cold starts per policy (the evaluator), and a pool's day (evaluator and API). Pure. */

const W = 640;
const H = 400;
const M = { left: 70, right: 20, top: 40, bottom: 50 };

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function axisTicks(max: number): number[] {
  const step = 10 ** Math.floor(Math.log10(Math.max(max, 1e-9)));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => max / s <= 6) ?? step * 10;
  const ticks: number[] = [];
  for (let v = 0; v <= max + 1e-9; v += nice) ticks.push(Math.round(v * 1e6) / 1e6);
  return ticks;
}

/** One point per policy: x cold starts, y cost. */
export function costVsColdStartsSvg(title: string, totals: Array<{ policy: string; coldStarts: number; costUsd: number }>): string {
  const maxX = Math.max(1, ...totals.map((t) => t.coldStarts)) * 1.1;
  const maxY = Math.max(0.01, ...totals.map((t) => t.costUsd)) * 1.1;
  // Coordinates rounded: the file is for people and diffs.
  const x = (v: number) => M.left + (v / maxX) * (W - M.left - M.right);
  const y = (v: number) => H - M.bottom - (v / maxY) * (H - M.top - M.bottom);
  const parts: string[] = [];
  for (const t of axisTicks(maxX)) {
    parts.push(`<line x1="${x(t).toFixed(1)}" y1="${H - M.bottom}" x2="${x(t).toFixed(1)}" y2="${M.top}" stroke="#eee"/>`);
    parts.push(`<text x="${x(t).toFixed(1)}" y="${H - M.bottom + 16}" text-anchor="middle">${t}</text>`);
  }
  for (const t of axisTicks(maxY)) {
    parts.push(`<line x1="${M.left}" y1="${y(t).toFixed(1)}" x2="${W - M.right}" y2="${y(t).toFixed(1)}" stroke="#eee"/>`);
    parts.push(`<text x="${M.left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${t}</text>`);
  }
  for (const t of totals) {
    const colour = t.policy === 'adaptive' ? '#d62728' : t.policy === 'oracle' ? '#2ca02c' : '#1f77b4';
    parts.push(`<circle cx="${x(t.coldStarts).toFixed(1)}" cy="${y(t.costUsd).toFixed(1)}" r="5" fill="${colour}"/>`);
    parts.push(`<text x="${(x(t.coldStarts) + 8).toFixed(1)}" y="${(y(t.costUsd) - 6).toFixed(1)}">${esc(t.policy)}</text>`);
  }
  return svg(title, 'cold starts', 'GPU cost (USD)', parts);
}

/** What a timeline may mark, and how each mark is drawn (the dashboard uses the same colours). */
export const TIMELINE_MARK_STYLE = {
  cold_start: { colour: '#ff7f0e', label: 'cold start' },
  wake: { colour: '#3182bd', label: 'wake (from stopped or sleep)' },
  to_zero: { colour: '#222222', label: 'to zero' },
  lane_move: { colour: '#9467bd', label: 'lane move' },
} as const;

export interface TimelineSvgOptions {
  /** Drawn as symbols on the time axis, each with its detail as a tooltip. */
  marks?: Array<{ at: number; kind: keyof typeof TIMELINE_MARK_STYLE; detail: string }>;
  /** `ago`: the axis counts back from the window's end (a live pool); `since` (default): from its start (a trace). */
  axis?: 'ago' | 'since';
}

/**
 * Nodes billed (line) and requests running (grey) over a window of `spanS` seconds; minutes on the axis up to
 * three hours, hours beyond.
 */
export function timelineSvg(
  title: string,
  allPoints: Array<[number, number, number]>,
  spanS: number,
  options: TimelineSvgOptions = {},
): string {
  const points = downsample(allPoints, spanS);
  let maxY = 1;
  for (const p of points) maxY = Math.max(maxY, p[1], p[2]);
  const x = (v: number) => M.left + (Math.min(spanS, Math.max(0, v)) / spanS) * (W - M.left - M.right);
  const y = (v: number) => H - M.bottom - (v / maxY) * (H - M.top - M.bottom);
  const stepPath = (index: 1 | 2) => {
    let d = `M${x(0)},${y(0)}`;
    for (const p of points) d += `H${x(p[0]).toFixed(1)}V${y(p[index]).toFixed(1)}`;
    return `${d}H${x(spanS)}`;
  };
  const unitS = spanS <= 3 * 3600 ? 60 : 3600;
  const ago = options.axis === 'ago';
  const parts: string[] = [];
  for (const t of axisTicks(spanS / unitS)) {
    const at = ago ? spanS - t * unitS : t * unitS;
    parts.push(`<text x="${x(at).toFixed(1)}" y="${H - M.bottom + 16}" text-anchor="middle">${t}</text>`);
  }
  for (const t of axisTicks(maxY)) parts.push(`<text x="${M.left - 6}" y="${y(t) + 4}" text-anchor="end">${t}</text>`);
  parts.push(`<path d="${stepPath(2)}" fill="none" stroke="#999" stroke-width="1"/>`);
  parts.push(`<path d="${stepPath(1)}" fill="none" stroke="#d62728" stroke-width="1.5"/>`);
  parts.push(`<text x="${W - M.right}" y="${M.top - 8}" text-anchor="end" fill="#d62728">nodes billed</text>`);
  parts.push(`<text x="${W - M.right - 100}" y="${M.top - 8}" text-anchor="end" fill="#999">requests running</text>`);
  const marks = options.marks ?? [];
  const kinds = new Set(marks.map((m) => m.kind));
  let legendX = M.left;
  for (const kind of Object.keys(TIMELINE_MARK_STYLE) as Array<keyof typeof TIMELINE_MARK_STYLE>) {
    if (!kinds.has(kind)) continue;
    const style = TIMELINE_MARK_STYLE[kind];
    parts.push(`<text x="${legendX}" y="${M.top - 8}" fill="${style.colour}">▲ ${style.label}</text>`);
    legendX += 18 + style.label.length * 6;
  }
  // Each mark: a tick up from the axis and a triangle under it, its detail as the tooltip.
  for (const m of marks) {
    const style = TIMELINE_MARK_STYLE[m.kind];
    const mx = x(m.at).toFixed(1);
    const base = H - M.bottom;
    parts.push(
      `<g class="mark ${m.kind}"><title>${esc(`${style.label}: ${m.detail}`)}</title>` +
        `<line x1="${mx}" y1="${base}" x2="${mx}" y2="${base - 10}" stroke="${style.colour}" stroke-width="1.5"/>` +
        `<path d="M${mx},${base - 12}l-4,-7h8z" fill="${style.colour}"/></g>`,
    );
  }
  const unit = unitS === 60 ? 'minutes' : 'hours';
  return svg(title, ago ? `${unit} ago` : unit, 'count', parts);
}

/** At most one point per 1/1000 of the span (the highest counts in it): a busy day has millions of changes. */
function downsample(points: Array<[number, number, number]>, spanS: number): Array<[number, number, number]> {
  if (points.length <= 2000) return points;
  const buckets = new Map<number, [number, number, number]>();
  for (const [t, nodes, running] of points) {
    const key = Math.floor((Math.max(0, t) / spanS) * 1000);
    const b = buckets.get(key);
    if (b) {
      b[1] = Math.max(b[1], nodes);
      b[2] = Math.max(b[2], running);
    } else buckets.set(key, [(key * spanS) / 1000, nodes, running]);
  }
  return [...buckets.values()];
}

function svg(title: string, xLabel: string, yLabel: string, parts: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<title>${esc(title)}</title>`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<line x1="${M.left}" y1="${H - M.bottom}" x2="${W - M.right}" y2="${H - M.bottom}" stroke="black"/>`,
    `<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${H - M.bottom}" stroke="black"/>`,
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 12}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text x="16" y="${(M.top + H - M.bottom) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(M.top + H - M.bottom) / 2})">${esc(yLabel)}</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
