/**
 * Kendall's rank correlation between two paired samples (tau-b, which corrects for ties):
 *
 *   tau_b = (C - D) / sqrt((P - Tx) * (P - Ty))
 *
 * over the P = n(n-1)/2 pairs (i, j): C concordant (x and y order them the same way), D
 * discordant (opposite ways), Tx pairs tied in x, Ty pairs tied in y (a pair tied in both
 * counts in both and is neither concordant nor discordant). Without ties it is Kendall's
 * original tau_a = (C - D) / P. In [-1, 1]; NaN when either sample is constant or n < 2.
 * Used for the proxy-fidelity study: does the PruningNet rank candidates as retraining does?
 */
export interface KendallTau {
  tau: number;
  concordant: number;
  discordant: number;
  tiesX: number;
  tiesY: number;
  pairs: number;
}

export function kendallTauB(x: readonly number[], y: readonly number[]): KendallTau {
  if (x.length !== y.length) {
    throw new RangeError(`kendallTauB: samples of different lengths (${x.length}, ${y.length})`);
  }
  const n = x.length;
  let concordant = 0;
  let discordant = 0;
  let tiesX = 0;
  let tiesY = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dx = Math.sign((x[j] as number) - (x[i] as number));
      const dy = Math.sign((y[j] as number) - (y[i] as number));
      if (Number.isNaN(dx) || Number.isNaN(dy)) {
        throw new RangeError(`kendallTauB: NaN at index ${Number.isNaN(dx) ? i : j}`);
      }
      if (dx === 0) tiesX++;
      if (dy === 0) tiesY++;
      if (dx !== 0 && dy !== 0) {
        if (dx === dy) concordant++;
        else discordant++;
      }
    }
  }
  const pairs = (n * (n - 1)) / 2;
  const denom = Math.sqrt((pairs - tiesX) * (pairs - tiesY));
  const tau = denom > 0 ? (concordant - discordant) / denom : Number.NaN;
  return { tau, concordant, discordant, tiesX, tiesY, pairs };
}

/** Just the coefficient. */
export function kendallTau(x: readonly number[], y: readonly number[]): number {
  return kendallTauB(x, y).tau;
}
