/**
 * End-to-end: an image folder written at test time from the real Fashion-MNIST (PNG train/,
 * JPEG test/) below the services' data root; a PruningNet trained on it through the weight
 * generator (classes from the folder names), a search through the controller and an
 * evaluator, an export whose metadata carries the folder's class names, and one clear
 * INVALID_ARGUMENT for an unusable folder.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type Stack, startStack, type TrainedPruningNet, trainOnStack } from '@metaprune/cli';
import { costModel } from '@metaprune/core';
import { loadDataset, writeImageFolder, writeSyntheticImageFolder } from '@metaprune/data';
import { networkFromProto } from '@metaprune/evaluator';
import { controller, weightgen } from '@metaprune/proto';
import { envClient, FIELD_METADATA_KEY, grpcClientOptions } from '@metaprune/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quickTrainingConfig, tinyMobileNetV2 } from './helpers/network.js';
import { followSearchOn, startSearchOn } from './helpers/search.js';

// numClasses 0: the weight generator takes the class count from the folder (10 here).
const NETWORK = tinyMobileNetV2({ inputChannels: 1, numClasses: 0 });

function wgClient(address: string): weightgen.WeightGeneratorServiceClient {
  const c = envClient(grpcClientOptions());
  return new weightgen.WeightGeneratorServiceClient(address, c.credentials, c.options);
}

function unary<Req, Res>(
  client: grpc.Client,
  fn: (req: Req, cb: (err: grpc.ServiceError | null, res: Res) => void) => unknown,
  req: Req,
): Promise<Res> {
  return new Promise((ok, fail) => {
    fn.call(client, req, (err, res) => (err ? fail(err) : ok(res)));
  });
}

describe('an image folder through the services', () => {
  let home: string;
  let stack: Stack;
  let pn: TrainedPruningNet;
  let classNames: string[];

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'metaprune-imagefolder-'));
    const dataRoot = join(home, 'data');
    const fm = await loadDataset({ name: 'fashion-mnist' });
    const shape = [28, 28, 1] as const;
    await writeImageFolder(join(dataRoot, 'fm', 'train'), fm.train, shape, fm.classNames, {
      format: 'png',
      perClass: 40,
    });
    await writeImageFolder(join(dataRoot, 'fm', 'test'), fm.test, shape, fm.classNames, {
      format: 'jpeg',
      perClass: 5,
    });
    await writeSyntheticImageFolder(join(dataRoot, 'one-class'), {
      classes: 1,
      perClass: 12,
      size: 16,
    });
    classNames = fm.classNames.map((n) => n.replace('/', '-')).sort();
    stack = await startStack({
      evaluators: 1,
      home,
      logLevel: 'warn',
      latencyProfiler: false,
      env: {
        'weight-generator': { WEIGHTGEN_DATA_ROOT: dataRoot },
        evaluator: { EVALUATOR_DATA_ROOT: dataRoot },
      },
    });
    pn = await trainOnStack(
      stack.weightGenerator.address,
      quickTrainingConfig(NETWORK, 'imagefolder:fm', 100),
    );
  }, 240_000);

  afterAll(async () => {
    await stack?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  }, 60_000);

  it('searches it through the controller and exports with the folder class names', async () => {
    const net = networkFromProto({ ...NETWORK, numClasses: 10 });
    const full = costModel(net).cost(net.genes.map(() => 30)).macs;
    const id = await startSearchOn(
      stack.controller.address,
      controller.StartSearchRequest.fromPartial({
        pruningnetId: pn.pruningnetId,
        budgets: [{ name: 'two-thirds', maxMacs: Math.round(full * 0.66) }],
        evolution: { populationSize: 4, generations: 1 },
        evaluation: { recalibrationBatches: 2, batchSize: 32, validationImages: 64, seed: 0 },
        seed: 1,
      }),
    );
    const s = await followSearchOn(() => stack.controller.address, id);
    const p = s.progress!;
    expect(p.state).toBe(controller.SearchState.SUCCEEDED);
    expect(p.failed).toBe(0);
    const best = p.best[0]!.best!;
    expect(best.top1).toBeGreaterThanOrEqual(0);
    expect(best.top1).toBeLessThanOrEqual(1);

    const client = wgClient(stack.weightGenerator.address);
    try {
      const res = await unary<weightgen.ExportNetworkRequest, weightgen.ExportNetworkResponse>(
        client,
        client.exportNetwork,
        weightgen.ExportNetworkRequest.fromPartial({
          pruningnetId: pn.pruningnetId,
          encoding: best.encoding!,
          name: 'imagefolder-best',
        }),
      );
      const model = JSON.parse(readFileSync(res.path, 'utf8')) as {
        userDefinedMetadata: { classNames: string[]; dataset: string };
      };
      expect(model.userDefinedMetadata.classNames).toEqual(classNames);
      expect(model.userDefinedMetadata.classNames).toContain('T-shirt-top');
    } finally {
      client.close();
    }
  });

  it('refuses a one-class folder with INVALID_ARGUMENT naming config.dataset', async () => {
    const client = wgClient(stack.weightGenerator.address);
    try {
      const err = (await unary(
        client,
        client.startTraining,
        weightgen.StartTrainingRequest.fromPartial({
          config: { network: NETWORK, dataset: 'imagefolder:one-class', epochs: 1 },
        }),
      ).then(
        () => undefined,
        (e: unknown) => e,
      )) as grpc.ServiceError;
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.metadata.get(FIELD_METADATA_KEY)[0]).toBe('config.dataset');
      expect(err.details).toContain(
        '"imagefolder:one-class": expected at least two class folders, got one (class000)',
      );
    } finally {
      client.close();
    }
  });
});
