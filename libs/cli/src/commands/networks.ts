import { buildNetwork, costModel, FAMILIES, fullEncoding, PRESETS } from '@metaprune/core';
import { parseFlags } from '../args.js';
import { human, table } from '../ui/table.js';

export const networksHelp = `metaprune networks [--json]
  Lists network families and presets with their gene counts and full-width cost.`;

export function networksCommand(argv: string[]): number {
  const v = parseFlags(argv, { json: { type: 'boolean' } });
  const rows = FAMILIES.flatMap((family) =>
    Object.keys(PRESETS).map((preset) => {
      const net = buildNetwork({ family, preset });
      const c = costModel(net).cost(fullEncoding(net));
      return {
        family,
        preset,
        genes: net.genes.length,
        layers: net.layers.length,
        input: `${net.spec.inputSize}x${net.spec.inputSize}x${net.spec.inputChannels}`,
        classes: net.spec.numClasses,
        macs: c.macs,
        params: c.params,
      };
    }),
  );
  if (v['json']) {
    console.log(JSON.stringify({ families: FAMILIES, presets: PRESETS, networks: rows }));
    return 0;
  }
  console.log(
    table(
      ['network', 'preset', 'genes', 'layers', 'input', 'classes', 'MACs', 'params'],
      rows.map((r) => [
        r.family,
        r.preset,
        r.genes,
        r.layers,
        r.input,
        r.classes,
        human(r.macs),
        human(r.params),
      ]),
    ),
  );
  console.log('\npresets:');
  for (const [name, p] of Object.entries(PRESETS)) console.log(`  ${name.padEnd(9)} ${p.about}`);
  console.log(
    '\nEvery family takes --width (multiplier of the maximum widths, 0.1..2); mobilenetv2 also --layout metapruning|standard.',
  );
  return 0;
}
