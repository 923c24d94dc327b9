import { costModel, layerCosts, SCALES } from '@metaprune/core';
import { parseFlags } from '../args.js';
import {
  ENCODING_OPTIONS,
  encodingFromFlags,
  NETWORK_OPTIONS,
  networkFromFlags,
} from '../network-flags.js';
import { human, table } from '../ui/table.js';

export const flopsHelp = `metaprune flops --network resnet50 [--preset imagenet|small] [--width W]
                (--uniform S | --encoding a,b,...) [--json]
  Multiply-accumulates and parameters of a (pruned) network, per layer and in total.
  Counted analytically from the layer graph: no model is built.`;

export function flopsCommand(argv: string[]): number {
  const v = parseFlags(argv, {
    ...NETWORK_OPTIONS,
    ...ENCODING_OPTIONS,
    json: { type: 'boolean' },
  });
  const net = networkFromFlags(v);
  const enc = encodingFromFlags(net, v);
  const total = costModel(net).cost(enc);
  if (v['json']) {
    console.log(
      JSON.stringify({
        network: net.spec.family,
        preset: net.spec.preset,
        width: net.spec.width,
        encoding: enc,
        macs: total.macs,
        params: total.params,
      }),
    );
    return 0;
  }
  const layers = layerCosts(net, enc);
  console.log(
    table(
      ['layer', 'kind', 'k', 's', 'in', 'out', 'size', 'MACs', 'params'],
      layers.map((l) => [
        l.name,
        l.kind,
        l.kernel,
        l.stride,
        l.cin,
        l.cout,
        `${l.inSize}->${l.outSize}`,
        human(l.macs),
        human(l.params),
      ]),
    ),
  );
  console.log(
    `\n${net.spec.family} ${net.spec.preset} width ${net.spec.width}: ${human(total.macs)} MACs, ${human(total.params)} params`,
  );
  console.log(
    `genes: ${net.genes.map((g, i) => `${g.name}=${SCALES[enc[i] as number]?.toFixed(2)}`).join(' ')}`,
  );
  return 0;
}
