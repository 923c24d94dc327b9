import { resolve } from 'node:path';
import { num, oneOf, parseFlags, str } from '../args.js';
import { DATA_OPTIONS, datasetClasses, prepareLocalData } from '../local-data.js';
import {
  ENCODING_OPTIONS,
  encodingFromFlags,
  NETWORK_OPTIONS,
  networkFromFlags,
} from '../network-flags.js';
import { ProgressBar } from '../ui/progress.js';

export const retrainHelp = `metaprune retrain --network mobilenetv2 --preset small --width 0.5 (--encoding ... | --uniform S)
                  --epochs N [--out DIR] [--form inference|training] [--batch 64] [--lr L] [--seed 0]
                  [--max-train-images N] [--json]
  Trains the pruned network from scratch as a plain network (no generators) on the whole
  training split, reports test-set top-1, and with --out exports it: by default in the
  inference form (folded tfjs graph model, see \`metaprune export --help\`), with
  --form training as a tfjs LayersModel.`;

export async function retrainCommand(argv: string[]): Promise<number> {
  const v = parseFlags(argv, {
    ...NETWORK_OPTIONS,
    ...ENCODING_OPTIONS,
    ...DATA_OPTIONS,
    epochs: { type: 'string' },
    out: { type: 'string' },
    batch: { type: 'string' },
    lr: { type: 'string' },
    seed: { type: 'string' },
    'max-train-images': { type: 'string' },
    backend: { type: 'string' },
    json: { type: 'boolean' },
    form: { type: 'string' },
  });
  // checked before training, not after it
  const form = oneOf(v, 'form', ['inference', 'training'] as const) ?? 'inference';
  const net = networkFromFlags(v, { preset: 'small', numClasses: await datasetClasses(v) });
  const enc = encodingFromFlags(net, v);
  const epochs = num(v, 'epochs', { min: 1, max: 10000, integer: true }, 1) as number;
  const batchSize = num(v, 'batch', { min: 1, max: 4096, integer: true }, 64) as number;
  const lr = num(v, 'lr', { min: 1e-6, max: 10 });
  const seed = num(v, 'seed', { min: 0, max: 2 ** 31, integer: true }, 0) as number;
  const maxTrainImages = num(v, 'max-train-images', { min: 1, max: 1e8, integer: true });
  const engine = await import('@metaprune/engine');
  const backend = await engine.initBackend({
    prefer: engine.parseBackendName(str(v, 'backend') ?? process.env[engine.BACKEND_ENV]),
  });
  const data = await prepareLocalData(v, net);
  const { wholeSubset } = await import('@metaprune/data');
  const bar = new ProgressBar({
    label: 'retrain',
    total: 1000,
    unit: '‰',
    silent: v['json'] === true,
  });
  const r = await engine.retrainPlain({
    net,
    encoding: enc,
    data: { train: wholeSubset(data.dataset, 'train'), test: wholeSubset(data.dataset, 'test') },
    epochs,
    batchSize,
    lr,
    seed,
    maxTrainImages,
    onProgress: (p) => {
      if (p.phase === 'train')
        bar.update(
          Math.round(1000 * p.fraction),
          `epoch ${p.epoch + 1}/${p.epochs} loss ${(p.loss ?? 0).toFixed(3)} ${p.imagesPerSec.toFixed(0)} img/s`,
        );
    },
  });
  bar.finish();
  let exported: string | undefined;
  const outFlag = str(v, 'out');
  if (outFlag) {
    exported = resolve(outFlag);
    const meta = engine.plainModelMetadata(net, enc, {
      preprocess: r.preprocess,
      classNames: data.dataset.classNames,
      dataset: data.dataset.name,
      test_top1: r.result.test_top1,
    });
    await engine.exportModel(r.model, exported, meta, { form });
  }
  r.model.dispose();
  const out = {
    test_top1: r.result.test_top1,
    macs: r.result.macs,
    params: r.result.params,
    backend: backend.name,
    exported: exported ?? null,
  };
  console.log(
    v['json']
      ? JSON.stringify(out)
      : `test top-1 ${(100 * r.result.test_top1).toFixed(2)}%, ${(r.result.macs / 1e6).toFixed(2)}M MACs${exported ? `; exported to ${exported}` : ''}`,
  );
  return 0;
}
