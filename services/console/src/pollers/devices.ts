/** Devices from the latency profiler (also its health row). */
import type * as grpc from '@grpc/grpc-js';
import type { LatencyProfilerClient } from '@metaprune/wire';
import type { ConsoleStore } from '../store.js';
import { deviceView } from '../views.js';

export async function pollDevices(
  profiler: LatencyProfilerClient,
  store: ConsoleStore,
): Promise<void> {
  try {
    store.devices = (await profiler.listDevices()).map(deviceView);
    store.setStatus('latency-profiler', true);
  } catch (err) {
    store.setStatus('latency-profiler', false, (err as grpc.ServiceError).details ?? String(err));
  }
}
