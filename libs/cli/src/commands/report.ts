import {
  buildNetwork,
  countCost,
  fullEncoding,
  type NetworkSpecInput,
  SCALE_COUNT,
  uniformEncoding,
} from '@metaprune/core';
import { parseFlags } from '../args.js';
import { human, table } from '../ui/table.js';

export const reportHelp = `metaprune report [--json]
  The search-space report: every family's gene layout and size, and the analytic MACs
  of reference networks next to their published figures.`;

// Published multiply-accumulates (224x224, conv + FC) the counter must reproduce.
const PUBLISHED: { label: string; spec: NetworkSpecInput; uniform?: number; macs: number }[] = [
  { label: 'ResNet-50 1.0x', spec: { family: 'resnet50' }, macs: 4.1e9 },
  { label: 'ResNet-50 0.75x (width)', spec: { family: 'resnet50', width: 0.75 }, macs: 2.3e9 },
  { label: 'ResNet-50 0.5x (uniform)', spec: { family: 'resnet50' }, uniform: 0.5, macs: 1.1e9 },
  { label: 'MobileNet V1 1.0x', spec: { family: 'mobilenetv1' }, macs: 569e6 },
  { label: 'MobileNet V1 0.75x', spec: { family: 'mobilenetv1', width: 0.75 }, macs: 325e6 },
  { label: 'MobileNet V1 0.5x', spec: { family: 'mobilenetv1', width: 0.5 }, macs: 149e6 },
  { label: 'MobileNet V1 0.25x', spec: { family: 'mobilenetv1', width: 0.25 }, macs: 41e6 },
  { label: 'MobileNet V2 1.0x', spec: { family: 'mobilenetv2', layout: 'standard' }, macs: 300e6 },
  {
    label: 'MobileNet V2 1.4x',
    spec: { family: 'mobilenetv2', layout: 'standard', width: 1.4 },
    macs: 585e6,
  },
];

export function reportCommand(argv: string[]): number {
  const v = parseFlags(argv, { json: { type: 'boolean' } });
  const spaces = (['mobilenetv1', 'mobilenetv2', 'resnet50'] as const).map((family) => {
    const net = buildNetwork({ family });
    const lo = countCost(
      net,
      net.genes.map(() => 0),
    ).macs;
    const hi = countCost(net, fullEncoding(net)).macs;
    return {
      family,
      genes: net.genes.length,
      log10Candidates: net.genes.length * Math.log10(SCALE_COUNT),
      minMacs: lo,
      maxMacs: hi,
    };
  });
  const figures = PUBLISHED.map((p) => {
    const net = buildNetwork(p.spec);
    const macs = countCost(
      net,
      p.uniform === undefined ? fullEncoding(net) : uniformEncoding(net, p.uniform),
    ).macs;
    return { label: p.label, published: p.macs, macs, errorPct: (100 * (macs - p.macs)) / p.macs };
  });
  if (v['json']) {
    console.log(JSON.stringify({ spaces, figures }));
    return 0;
  }
  console.log('Search spaces (ImageNet preset, 31 scale choices per gene)\n');
  console.log(
    table(
      ['network', 'genes', 'candidates', 'min MACs', 'max MACs'],
      spaces.map((s) => [
        s.family,
        s.genes,
        `10^${s.log10Candidates.toFixed(1)}`,
        human(s.minMacs),
        human(s.maxMacs),
      ]),
    ),
  );
  console.log('\nAnalytic MACs against published figures\n');
  console.log(
    table(
      ['network', 'published', 'counted', 'error %'],
      figures.map((f) => [
        f.label,
        human(f.published),
        human(f.macs),
        Number(f.errorPct.toFixed(2)),
      ]),
    ),
  );
  return 0;
}
