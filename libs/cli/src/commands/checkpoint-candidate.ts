import { resolve } from 'node:path';
import { buildNetwork, type Encoding, type Network } from '@metaprune/core';
import type { Values } from '../args.js';
import { requireStr, str } from '../args.js';
import { type LocalData, prepareLocalData } from '../local-data.js';
import { encodingFromFlags } from '../network-flags.js';
import { type RunInfo, readRunInfo } from './train.js';

type Engine = typeof import('@metaprune/engine');

/** What `evaluate` and `export` both start from: a trained checkpoint, one candidate, its data. */
export interface CheckpointCandidate {
  dir: string;
  info: RunInfo;
  net: Network;
  encoding: Encoding;
  engine: Engine;
  backend: string;
  data: LocalData;
  pnet: Awaited<ReturnType<Engine['loadCheckpoint']>>['pnet'];
}

/**
 * Flags are validated (`--checkpoint`, the encoding) before tfjs loads; the data split is
 * the checkpoint's own, so scores never use images the PruningNet trained on.
 */
export async function openCheckpointCandidate(v: Values): Promise<CheckpointCandidate> {
  const dir = resolve(requireStr(v, 'checkpoint'));
  const info = readRunInfo(dir);
  const net = buildNetwork(info.spec);
  const encoding = encodingFromFlags(net, v);
  const engine = await import('@metaprune/engine');
  const backend = await engine.initBackend({
    prefer: engine.parseBackendName(str(v, 'backend') ?? process.env[engine.BACKEND_ENV]),
  });
  const data = await prepareLocalData(
    { ...v, dataset: info.dataset, 'data-dir': str(v, 'data-dir') ?? info.dataDir },
    net,
    info,
  );
  const { pnet } = await engine.loadCheckpoint(dir);
  return { dir, info, net, encoding, engine, backend: backend.name, data, pnet };
}
