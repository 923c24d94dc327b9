/** The README written next to an inference-form export: what a user writes to run it. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

function fmt(v: unknown, digits = 2): string {
  return typeof v === 'number' ? v.toFixed(digits) : 'not measured';
}

/** README text for the inference form with metadata `meta`. */
export function deployReadmeText(meta: Record<string, unknown>): string {
  const runtime = (meta['runtime'] ?? {}) as { imports?: string[] };
  const imports = runtime.imports ?? [];
  const shape = (meta['inputShape'] as (number | null)[] | undefined) ?? [null, 28, 28, 1];
  const dims = shape.slice(1).join(', ');
  const classes = (meta['classNames'] as string[] | undefined) ?? [];
  const lat = (meta['latency'] ?? {}) as Record<string, unknown>;
  const table = lat['table'] as { device?: string } | undefined;
  const lines = [
    `# ${String(meta['network'] ?? 'model')} ${String(meta['role'] ?? '')}`.trimEnd(),
    '',
    'Inference form exported by metaprune: batch norm folded into the convolutions, ReLU/ReLU6',
    'fused into them, the input normalisation folded into the stem; a tfjs graph model that',
    `plain \`@tensorflow/tfjs\` runs${imports.length ? ` with ${imports.join(', ')}` : ' (nothing else to import)'}.`,
    '',
    '```js',
    "import * as tf from '@tensorflow/tfjs';",
    ...imports.map((p) => `import '${p}';`),
    "const model = await tf.loadGraphModel('https://your.host/path/model.json');",
    `const probs = model.predict(tf.tensor4d(pixels, [1, ${dims}])); // pixels in [0, 1], NHWC`,
    '```',
    '',
    `Input: \`[batch, ${dims}]\` float32 pixels in [0, 1] (the model normalises them itself).`,
    `Output: \`[batch, ${classes.length || 'classes'}]\` ${String(meta['output'] ?? 'probabilities')}${classes.length ? ` for ${classes.join(', ')}` : ''}.`,
    "For the fastest CPU path add `import '@tensorflow/tfjs-backend-wasm'` and `await tf.setBackend('wasm')`.",
    '',
    `MACs: ${String(meta['macs'] ?? '?')}, params: ${String(meta['params'] ?? '?')}, test top-1: ${fmt(meta['test_top1'], 4)}.`,
    `Latency at batch 1 (ms): predicted ${fmt(lat['predicted_ms'])}${table?.device ? ` by the latency table of device ${table.device}` : ''}; delivered ${fmt(lat['delivered_ms'])}${lat['host'] ? ` measured on ${String(lat['host'])} (${String(lat['runtime'])})` : ''}.`,
    'Full metadata: `userDefinedMetadata` in model.json.',
    '',
  ];
  return lines.join('\n');
}

export async function deployReadme(dir: string, meta: Record<string, unknown>): Promise<void> {
  await writeFile(join(dir, 'README.md'), deployReadmeText(meta));
}
