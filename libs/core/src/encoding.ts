import { ValidationError } from './errors.js';
import type { Network, Width } from './networks/types.js';
import { channelsAt, MAX_SCALE_ID, SCALES, scaleIdAtMost } from './scales.js';

/** A candidate: one scale id (0..30) per gene of the network. */
export type Encoding = readonly number[];

/** Throws a ValidationError naming the first bad gene and the allowed range. */
export function validateEncoding(
  net: Network,
  enc: readonly unknown[],
  field = 'encoding',
): Encoding {
  if (!Array.isArray(enc) || enc.length !== net.genes.length) {
    throw new ValidationError(
      field,
      `expected ${net.genes.length} genes for ${net.spec.family}/${net.spec.preset}, got ${Array.isArray(enc) ? enc.length : typeof enc}`,
    );
  }
  enc.forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_SCALE_ID) {
      const gene = net.genes[i];
      throw new ValidationError(
        `${field}[${i}]`,
        `gene "${gene?.name}" = ${String(v)} is out of range; allowed integers 0..${MAX_SCALE_ID}`,
      );
    }
  });
  return enc as Encoding;
}

/** Parses "3,5,30,..." (as typed on a command line) and validates it. */
export function parseEncoding(net: Network, text: string, field = 'encoding'): Encoding {
  const parts = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const values = parts.map((p) => (/^-?\d+$/.test(p) ? Number(p) : p));
  return validateEncoding(net, values, field);
}

export function formatEncoding(enc: Encoding): string {
  return enc.join(',');
}

/** Every gene at the largest scale choice not above `scale` (the uniform baseline). */
export function uniformEncoding(net: Network, scale: number, field = 'uniform'): Encoding {
  if (!Number.isFinite(scale) || scale < (SCALES[0] as number) - 1e-9 || scale > 1 + 1e-9) {
    throw new ValidationError(field, `${scale} is out of range; allowed ${SCALES[0]}..1`);
  }
  const id = scaleIdAtMost(scale);
  return net.genes.map(() => id);
}

export function fullEncoding(net: Network): Encoding {
  return net.genes.map(() => MAX_SCALE_ID);
}

/** Channels of a width under an encoding. */
export function widthOf(w: Width, enc: Encoding): number {
  return w.gene === null ? w.max : channelsAt(w.max, enc[w.gene] as number);
}

/** Scale fed to a weight generator for a width (1 for fixed widths). */
export function scaleOf(gene: number | null, enc: Encoding): number {
  return gene === null ? 1 : (SCALES[enc[gene] as number] as number);
}

/** Channels per gene under an encoding, in gene order. */
export function geneChannels(net: Network, enc: Encoding): number[] {
  return net.genes.map((g) => channelsAt(g.max, enc[g.index] as number));
}
