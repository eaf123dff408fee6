/** The idle-gap histogram's bins, shared by the keep-alive policy and the warm-state ladder. Pure. */

/** Bin edges in seconds: [0, 1), then ×1.15 per bin up to 4 hours; a gap past the last edge is out of range. */
export const GAP_BIN_EDGES_S: readonly number[] = (() => {
  const edges = [0, 1];
  while (edges[edges.length - 1] < 4 * 3600) edges.push(Math.round(edges[edges.length - 1] * 1.15 * 1000) / 1000);
  return edges;
})();
export const GAP_BIN_COUNT = GAP_BIN_EDGES_S.length - 1;
/** Index of the bin holding a gap of `gapMs`, or -1 past the range. */
export function gapBin(gapMs: number): number {
  const seconds = gapMs / 1000;
  if (seconds >= GAP_BIN_EDGES_S[GAP_BIN_COUNT]) return -1;
  let lo = 0;
  let hi = GAP_BIN_COUNT - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (GAP_BIN_EDGES_S[mid] <= seconds) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The value a bin stands for in the cost model, seconds (geometric middle; the first bin: half a second). */
export function binValueSeconds(bin: number): number {
  return bin === 0 ? 0.5 : Math.sqrt(GAP_BIN_EDGES_S[bin] * GAP_BIN_EDGES_S[bin + 1]);
}
