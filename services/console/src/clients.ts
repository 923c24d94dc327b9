/** The gRPC clients of the services the console reads (all from @metaprune/wire). */
import {
  LatencyProfilerClient,
  type SearchClient,
  searchClient,
  type WeightGeneratorClient,
  weightGeneratorClient,
} from '@metaprune/wire';

export interface ClientAddresses {
  controller?: string;
  weightGenerator?: string;
  latencyProfiler?: string;
}

export interface ConsoleClients {
  readonly search?: SearchClient;
  readonly wg?: WeightGeneratorClient;
  /** For ExportNetwork (see weightGeneratorClient's longCalls). */
  readonly wgExport?: WeightGeneratorClient;
  readonly profiler?: LatencyProfilerClient;
}

/** Default deadline of the console's unary reads. */
export const READ_DEADLINE_MS = 10_000;

export function connectClients(a: ClientAddresses): ConsoleClients {
  return {
    ...(a.controller ? { search: searchClient(a.controller) } : {}),
    ...(a.weightGenerator
      ? {
          wg: weightGeneratorClient(a.weightGenerator),
          wgExport: weightGeneratorClient(a.weightGenerator, { longCalls: true }),
        }
      : {}),
    ...(a.latencyProfiler
      ? { profiler: new LatencyProfilerClient(a.latencyProfiler, { timeoutMs: 30_000 }) }
      : {}),
  };
}

export function closeClients(c: ConsoleClients): void {
  c.search?.close();
  c.wg?.close();
  c.wgExport?.close();
  c.profiler?.close();
}
