import { credentials, Server, ServerCredentials, type ServiceError, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assembleTensors,
  chunkTensor,
  common,
  float32Tensor,
  latency,
  tensorToFloat32,
  weightgen,
} from '../src/index.js';

// A tiny in-memory LatencyProfilerService: enough behaviour to prove the generated
// definitions, serializers and client work over a real HTTP/2 connection.
function latencyImpl(): latency.LatencyProfilerServiceServer {
  const devices = new Map<string, { device: latency.Device; token: string }>();
  const tables = new Map<string, latency.LatencyTable>();
  const fail = (code: status, details: string): Partial<ServiceError> => ({ code, details });
  return {
    registerDevice(call, cb) {
      const id = `dev-${devices.size + 1}`;
      const device = latency.Device.fromPartial({
        deviceId: id,
        name: call.request.name,
        description: call.request.description,
        createTime: new Date(0),
      });
      devices.set(id, { device, token: `tok-${id}` });
      cb(null, { device, token: `tok-${id}` });
    },
    uploadLatencyTable(call, cb) {
      const entry = devices.get(call.request.deviceId);
      if (!entry) return cb(fail(status.NOT_FOUND, 'device_id: unknown device'));
      if (call.request.token !== entry.token) {
        return cb(fail(status.PERMISSION_DENIED, 'token: wrong token for device'));
      }
      const rows = call.request.table?.rows ?? [];
      const bad = rows.findIndex((r) => !(r.medianMs >= 0));
      if (bad >= 0) return cb(fail(status.INVALID_ARGUMENT, `table.rows[${bad}].median_ms`));
      tables.set(entry.device.deviceId, { ...call.request.table!, version: 1 });
      cb(null, { version: 1, rowCount: rows.length });
    },
    getLatencyTable(call, cb) {
      const table = tables.get(call.request.deviceId);
      if (!table) return cb(fail(status.NOT_FOUND, 'no table'));
      cb(null, { table });
    },
    listDevices(_call, cb) {
      cb(null, { devices: [...devices.values()].map((d) => d.device), nextPageToken: '' });
    },
    predictLatency(call, cb) {
      const table = tables.get(call.request.deviceId);
      if (!table) return cb(fail(status.NOT_FOUND, 'no table'));
      // toy model: gene i picks row i's latency scaled by (gene+1)/31
      const genes = call.request.encoding?.genes ?? [];
      const layers = genes.map((g, i) => ({
        layerId: table.rows[i]!.layerId,
        cin: table.rows[i]!.cin,
        cout: table.rows[i]!.cout,
        latencyMs: (table.rows[i]!.medianMs * (g + 1)) / 31,
      }));
      const predictedMs = layers.reduce((s, l) => s + l.latencyMs, table.constantMs);
      cb(null, {
        predictedMs,
        version: table.version,
        layers: call.request.includeLayers ? layers : [],
      });
    },
  };
}

// Only GenerateWeights is exercised; the other RPCs answer UNIMPLEMENTED.
const unimplemented = (_call: unknown, cb: (e: Partial<ServiceError>) => void) =>
  cb({ code: status.UNIMPLEMENTED, details: 'not in this test' });

const BIG = 1_500_000; // floats: 6 MB, larger than gRPC's default 4 MiB message limit
const bigValues = Float32Array.from({ length: BIG }, (_, i) => Math.sin(i));

function weightgenImpl(): weightgen.WeightGeneratorServiceServer {
  return {
    startTraining: unimplemented,
    getTraining: unimplemented,
    cancelTraining: unimplemented,
    listPruningNets: unimplemented,
    listTrainingJobs: unimplemented,
    exportNetwork: unimplemented,
    watchTraining(call) {
      call.emit('error', {
        code: status.NOT_FOUND,
        details: `job_id: unknown job "${call.request.jobId}"`,
      });
    },
    generateWeights(call) {
      const genes = call.request.encoding?.genes ?? [];
      const tensors = [
        [
          'conv.weight',
          float32Tensor([genes.length, 3], Float32Array.from(genes.flatMap((g) => [g, g, g]))),
        ],
        ['big', float32Tensor([BIG], bigValues)],
      ] as const;
      const total = tensors.reduce((s, [, t]) => s + t.data.length, 0);
      call.write({
        payload: {
          $case: 'header',
          value: {
            pruningnetId: call.request.pruningnetId,
            version: call.request.version || 7,
            tensorCount: tensors.length,
            totalBytes: total,
            channels: genes,
          },
        },
      });
      for (const [name, t] of tensors) {
        for (const chunk of chunkTensor(name, t, call.request.maxChunkBytes || undefined)) {
          call.write({ payload: { $case: 'chunk', value: chunk } });
        }
      }
      call.end();
    },
  };
}

let server: Server;
let latencyClient: latency.LatencyProfilerServiceClient;
let weightsClient: weightgen.WeightGeneratorServiceClient;

// Promise over a generated unary client method: unary<R>((cb) => client.rpc(req, md, cb)).
function unary<Res>(
  call: (cb: (err: ServiceError | null, res: Res) => void) => unknown,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    call((err, res) => (err ? reject(err) : resolve(res)));
  });
}

beforeAll(async () => {
  server = new Server();
  server.addService(latency.LatencyProfilerServiceService, latencyImpl());
  server.addService(weightgen.WeightGeneratorServiceService, weightgenImpl());
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  expect(port).toBeGreaterThan(0);
  const addr = `127.0.0.1:${port}`;
  latencyClient = new latency.LatencyProfilerServiceClient(addr, credentials.createInsecure());
  weightsClient = new weightgen.WeightGeneratorServiceClient(addr, credentials.createInsecure());
});

afterAll(async () => {
  latencyClient?.close();
  weightsClient?.close();
  await new Promise<void>((resolve) => (server ? server.tryShutdown(() => resolve()) : resolve()));
});

describe('generated grpc-js service over a real server', () => {
  const network = common.NetworkSpec.fromPartial({
    family: common.NetworkFamily.MOBILENET_V2,
    preset: common.NetworkPreset.SMALL,
    widthMultiplier: 0.5,
  });

  it('registers a device, uploads a table, predicts latency and lists devices', async () => {
    const reg = await unary<latency.RegisterDeviceResponse>((cb) =>
      latencyClient.registerDevice(
        {
          name: 'laptop',
          description: 'wasm backend',
        },
        cb,
      ),
    );
    expect(reg.device?.deviceId).toBe('dev-1');
    expect(reg.device?.createTime?.getTime()).toBe(0);
    expect(reg.token).toBe('tok-dev-1');

    const key = { network, backend: 'wasm', batchSize: 1 };
    const rows = [
      { layerId: 'stem', cin: 1, cout: 16, medianMs: 3.1, spreadMs: 0.2, repeats: 20 },
      { layerId: 'block1.conv1', cin: 16, cout: 32, medianMs: 6.2, spreadMs: 0.3, repeats: 20 },
    ];
    const up = await unary<latency.UploadLatencyTableResponse>((cb) =>
      latencyClient.uploadLatencyTable(
        {
          deviceId: 'dev-1',
          token: reg.token,
          table: latency.LatencyTable.fromPartial({ key, rows, constantMs: 0.5 }),
        },
        cb,
      ),
    );
    expect(up).toEqual({ version: 1, rowCount: 2 });

    const got = await unary<latency.GetLatencyTableResponse>((cb) =>
      latencyClient.getLatencyTable(
        {
          deviceId: 'dev-1',
          key,
          version: 0,
        },
        cb,
      ),
    );
    expect(got.table?.rows).toEqual(rows.map((r) => latency.LatencyRow.fromPartial(r)));
    expect(got.table?.key?.network).toEqual(network);

    const pred = await unary<latency.PredictLatencyResponse>((cb) =>
      latencyClient.predictLatency(
        {
          deviceId: 'dev-1',
          key,
          version: 0,
          encoding: { genes: [30, 15] },
          includeLayers: true,
        },
        cb,
      ),
    );
    expect(pred.predictedMs).toBeCloseTo(0.5 + 3.1 + (6.2 * 16) / 31, 10);
    expect(pred.layers.map((l) => l.layerId)).toEqual(['stem', 'block1.conv1']);

    const list = await unary<latency.ListDevicesResponse>((cb) =>
      latencyClient.listDevices(
        {
          pageSize: 0,
          pageToken: '',
        },
        cb,
      ),
    );
    expect(list.devices.map((d) => d.name)).toEqual(['laptop']);
  });

  it('carries status codes and details to the client', async () => {
    const err = await unary<latency.UploadLatencyTableResponse>((cb) =>
      latencyClient.uploadLatencyTable(
        {
          deviceId: 'dev-1',
          token: 'wrong',
          table: latency.LatencyTable.fromPartial({}),
        },
        cb,
      ),
    ).catch((e: ServiceError) => e);
    expect((err as ServiceError).code).toBe(status.PERMISSION_DENIED);
    expect((err as ServiceError).details).toBe('token: wrong token for device');

    const missing = await unary<latency.PredictLatencyResponse>((cb) =>
      latencyClient.predictLatency(
        {
          deviceId: 'nope',
          version: 0,
          includeLayers: false,
        },
        cb,
      ),
    ).catch((e: ServiceError) => e);
    expect((missing as ServiceError).code).toBe(status.NOT_FOUND);
  });

  it('streams generated weights larger than one message as chunks (server streaming)', async () => {
    const stream = weightsClient.generateWeights({
      pruningnetId: 'pn-1',
      version: 0,
      encoding: { genes: [3, 30, 0] },
      maxChunkBytes: 1 << 20,
    });
    const messages: weightgen.GenerateWeightsResponse[] = [];
    for await (const msg of stream) messages.push(msg as weightgen.GenerateWeightsResponse);

    const first = messages[0]?.payload;
    expect(first?.$case).toBe('header');
    if (first?.$case !== 'header') throw new Error('no header');
    expect(first.value).toMatchObject({ pruningnetId: 'pn-1', version: 7, tensorCount: 2 });
    expect(first.value.channels).toEqual([3, 30, 0]);

    const chunks = messages.slice(1).map((m) => {
      if (m.payload?.$case !== 'chunk') throw new Error('header after the first message');
      return m.payload.value;
    });
    // 6 MB tensor in 1 MiB pieces + the small tensor in one
    expect(chunks.length).toBe(1 + Math.ceil((BIG * 4) / (1 << 20)));
    for (const c of chunks) expect(c.data.length).toBeLessThanOrEqual(1 << 20);

    const tensors = await assembleTensors(chunks);
    expect(first.value.totalBytes).toBe(
      [...tensors.values()].reduce((s, t) => s + t.data.length, 0),
    );
    expect(Array.from(tensorToFloat32(tensors.get('conv.weight')!))).toEqual([
      3, 3, 3, 30, 30, 30, 0, 0, 0,
    ]);
    const big = tensorToFloat32(tensors.get('big')!);
    expect(big.length).toBe(BIG);
    expect(big[123_456]).toBe(Math.fround(Math.sin(123_456)));
    expect(big[BIG - 1]).toBe(Math.fround(Math.sin(BIG - 1)));
  });

  it('a streaming RPC that fails surfaces its status on the stream', async () => {
    const stream = weightsClient.watchTraining({ jobId: 'j' });
    const err = await (async () => {
      try {
        for await (const _ of stream) {
          /* no messages expected */
        }
      } catch (e) {
        return e as ServiceError;
      }
      return undefined;
    })();
    expect(err?.code).toBe(status.NOT_FOUND);
    expect(err?.details).toBe('job_id: unknown job "j"');
  });
});
