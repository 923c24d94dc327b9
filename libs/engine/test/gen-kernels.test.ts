/**
 * The SIMD wasm generator kernels (generation, catch-up, fused backward + update) against
 * the TypeScript loops, on a PruningNet whose state lives in a shared wasm memory.
 */
import { buildNetwork } from '@metaprune/core';
import { afterEach, describe, expect, it } from 'vitest';
import { CatchUp, flushRows } from '../src/pruningnet/generator.js';
import { createPruningNet, sampleEncoding } from '../src/pruningnet/pruningnet.js';
import {
  allLayers,
  GenScratch,
  generateLayers,
  planCrops,
  updateLayers,
} from '../src/pruningnet/step.js';
import { GenKernels, useGenKernels } from '../src/pruningnet/wasm-gen.js';
import { linearOptim } from '../src/train/schedule.js';

afterEach(() => useGenKernels(true));

function maxRel(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs((a[i] as number) - (b[i] as number)));
    m = Math.max(m, Math.abs(b[i] as number));
  }
  return m === 0 ? d : d / m;
}

describe('generator kernels', () => {
  it('match the TypeScript loops over several steps (conv, depthwise, 3x3 stem, lagging rows)', () => {
    const net = buildNetwork({
      family: 'mobilenetv2',
      preset: 'small',
      width: 0.25,
      inputSize: 8,
      numClasses: 4,
    });
    const optim = linearOptim({ lr: 0.05, totalSteps: 20, momentum: 0.9 });
    const withK = createPruningNet(net, { seed: 2 });
    expect(withK.state.wasm).toBeDefined();
    expect(GenKernels.for(withK.state, withK.layout)).not.toBeNull();
    const plain = createPruningNet(net, { seed: 2 });
    const L = withK.layout;
    const arenas: Float32Array[] = [];
    for (const [p, kernels] of [
      [withK, true],
      [plain, false],
    ] as const) {
      useGenKernels(kernels);
      const cu = new CatchUp(optim);
      const scratch = new GenScratch(L);
      const arena = new Float32Array(L.totalRows);
      const g0 = new Float32Array(L.gradArenaSize);
      const g1 = new Float32Array(L.gradArenaSize);
      for (let t = 0; t < 6; t++) {
        const enc = sampleEncoding(net, 9, t);
        const plan = planCrops(L, enc);
        generateLayers(L, p.state, enc, plan, scratch, arena, allLayers(L), { t, cu });
        for (let i = 0; i < g0.length; i++) {
          g0[i] = Math.sin(i * 0.61 + t);
          g1[i] = Math.cos(i * 0.29 - t);
        }
        const u = { t, lr: optim.lrAt(t), momentum: 0.9, classifierLrScale: 0.1 };
        updateLayers(L, p.state, plan, scratch, [g0, g1], [0.75, 0.25], u, allLayers(L));
      }
      flushRows(
        L,
        p.state,
        6,
        new CatchUp(optim),
        undefined,
        kernels ? GenKernels.for(p.state, L) : null,
      );
      arenas.push(arena.slice());
    }
    expect(maxRel(arenas[0] as Float32Array, arenas[1] as Float32Array)).toBeLessThan(1e-4);
    for (const k of ['w2', 'b2', 'small'] as const) {
      expect(maxRel(withK.state.params[k], plain.state.params[k])).toBeLessThan(1e-4);
      expect(maxRel(withK.state.momentum[k], plain.state.momentum[k])).toBeLessThan(1e-4);
    }
    expect(Array.from(withK.state.lastStep)).toEqual(Array.from(plain.state.lastStep));
  });
});
