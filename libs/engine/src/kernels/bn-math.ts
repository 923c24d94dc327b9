/** Batch-norm maths as plain loops (float64 accumulation); shared by the kernels. */

/** Forward loops: fills y, mean, variance (statistics over rows of C channels). */
export function bnForwardLoop(
  xv: Float32Array,
  yv: Float32Array,
  meanv: Float32Array,
  varv: Float32Array,
  C: number,
  eps: number,
): void {
  const R = xv.length / C;
  const s = new Float64Array(C);
  const q = new Float64Array(C);
  // Shifted sums (shift = first row) keep the one-pass variance accurate.
  for (let i = 0; i < xv.length; i += C) {
    for (let c = 0; c < C; c++) {
      const d = xv[i + c]! - xv[c]!;
      s[c] = s[c]! + d;
      q[c] = q[c]! + d * d;
    }
  }
  const mean = new Float32Array(C);
  const rstd = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    const m = s[c]! / R;
    const v = Math.max(0, q[c]! / R - m * m);
    mean[c] = xv[c]! + m;
    meanv[c] = mean[c]!;
    varv[c] = v;
    rstd[c] = 1 / Math.sqrt(v + eps);
  }
  for (let i = 0; i < xv.length; i += C) {
    for (let c = 0; c < C; c++) yv[i + c] = (xv[i + c]! - mean[c]!) * rstd[c]!;
  }
}

/**
 * Per-channel coefficients of dx = k1*dy + k0 + k2*y, from the channel sums of dy and
 * dy*y, including the (usually zero) gradients reaching mean and variance directly.
 */
export function bnBackwardCoefficients(
  sumDy: Float64Array,
  sumDyY: Float64Array,
  varv: Float32Array,
  dmean: Float32Array,
  dvar: Float32Array,
  R: number,
  eps: number,
): { k0: Float32Array; k1: Float32Array; k2: Float32Array } {
  const C = varv.length;
  const k0 = new Float32Array(C);
  const k1 = new Float32Array(C);
  const k2 = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    const std = Math.sqrt(varv[c]! + eps);
    const rstd = 1 / std;
    k1[c] = rstd;
    k0[c] = (-rstd * sumDy[c]! + dmean[c]!) / R;
    k2[c] = (-rstd * sumDyY[c]! + 2 * dvar[c]! * std) / R;
  }
  return { k0, k1, k2 };
}

/**
 * The two passes every batch-norm backward loop makes: channel sums of dy and dy * y, then
 * dx = k1 * dy + k0 + k2 * y with the coefficients `coefficients` derives from the sums.
 */
function backwardLoop(
  dyv: Float32Array,
  yv: Float32Array,
  dxv: Float32Array,
  C: number,
  coefficients: (
    sumDy: Float64Array,
    sumDyY: Float64Array,
    R: number,
  ) => { k0: Float32Array; k1: Float32Array; k2: Float32Array },
): void {
  const a = new Float64Array(C);
  const b = new Float64Array(C);
  for (let i = 0; i < dyv.length; i += C) {
    for (let c = 0; c < C; c++) {
      const g = dyv[i + c]!;
      a[c] = a[c]! + g;
      b[c] = b[c]! + g * yv[i + c]!;
    }
  }
  const { k0, k1, k2 } = coefficients(a, b, dyv.length / C);
  for (let i = 0; i < dyv.length; i += C) {
    for (let c = 0; c < C; c++) dxv[i + c] = k1[c]! * dyv[i + c]! + k0[c]! + k2[c]! * yv[i + c]!;
  }
}

export function bnBackwardLoop(
  dyv: Float32Array,
  yv: Float32Array,
  varv: Float32Array,
  dmean: Float32Array,
  dvar: Float32Array,
  dxv: Float32Array,
  eps: number,
): void {
  backwardLoop(dyv, yv, dxv, varv.length, (a, b, R) =>
    bnBackwardCoefficients(a, b, varv, dmean, dvar, R, eps),
  );
}

/**
 * Affine batch norm (z = gamma * y + beta after the normalisation), backward from dz:
 * dbeta = sum dz, dgamma = sum dz * y (written into `dgamma` / `dbeta`); dy = gamma * dz, so
 * the normalisation's sums are gamma times these and dx = (k1 * gamma) * dz + k0 + k2 * y.
 * Returns those coefficients.
 */
export function bnAffineCoefficients(
  sumDz: Float64Array,
  sumDzY: Float64Array,
  varv: Float32Array,
  gamma: Float32Array,
  dgamma: Float32Array,
  dbeta: Float32Array,
  R: number,
  eps: number,
): { k0: Float32Array; k1: Float32Array; k2: Float32Array } {
  const C = varv.length;
  const sumDy = new Float64Array(C);
  const sumDyY = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    dbeta[c] = sumDz[c]!;
    dgamma[c] = sumDzY[c]!;
    sumDy[c] = gamma[c]! * sumDz[c]!;
    sumDyY[c] = gamma[c]! * sumDzY[c]!;
  }
  const zeros = new Float32Array(C);
  const k = bnBackwardCoefficients(sumDy, sumDyY, varv, zeros, zeros, R, eps);
  for (let c = 0; c < C; c++) k.k1[c] = k.k1[c]! * gamma[c]!;
  return k;
}

export function bnAffineBackwardLoop(
  dzv: Float32Array,
  yv: Float32Array,
  varv: Float32Array,
  gamma: Float32Array,
  dxv: Float32Array,
  dgamma: Float32Array,
  dbeta: Float32Array,
  eps: number,
): void {
  backwardLoop(dzv, yv, dxv, varv.length, (a, b, R) =>
    bnAffineCoefficients(a, b, varv, gamma, dgamma, dbeta, R, eps),
  );
}

export function scaleShiftLoop(
  xv: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  out: Float32Array,
): void {
  const C = gamma.length;
  for (let i = 0; i < xv.length; i += C) {
    for (let c = 0; c < C; c++) out[i + c] = xv[i + c]! * gamma[c]! + beta[c]!;
  }
}
