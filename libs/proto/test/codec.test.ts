import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { describe, expect, it } from 'vitest';
import {
  assembleTensors,
  chunkTensor,
  common,
  controller,
  evaluation,
  familyFromId,
  familyToId,
  float32Tensor,
  type MessageCodec,
  presetFromId,
  presetToId,
  TensorAssembler,
  tensorToFloat32,
  weightgen,
} from '../src/index.js';

function roundTrip<T>(codec: MessageCodec<T>, msg: T): T {
  const bytes = codec.encode(msg).finish();
  return codec.decode(bytes);
}

describe('binary round trips', () => {
  it('NetworkSpec keeps every field, enums included', () => {
    const spec = common.NetworkSpec.fromPartial({
      family: common.NetworkFamily.MOBILENET_V2,
      preset: common.NetworkPreset.SMALL,
      widthMultiplier: 0.5,
      inputSize: 28,
      inputChannels: 1,
      numClasses: 10,
      keepLastStageFull: true,
    });
    const back = roundTrip(common.NetworkSpec, spec);
    expect(back).toEqual(spec);
    expect(back.family).toBe(2);
  });

  it('Budget keeps uint64 MACs above 2^32 exactly and leaves unset bounds undefined', () => {
    const budget = common.Budget.fromPartial({
      name: 'resnet50-2.3G',
      maxMacs: 4_100_000_000,
      minParams: 25_557_032,
      maxLatencyMs: 12.5,
      latencyDeviceId: 'dev-1',
    });
    const back = roundTrip(common.Budget, budget);
    expect(back.maxMacs).toBe(4_100_000_000);
    expect(back.minParams).toBe(25_557_032);
    expect(back.maxLatencyMs).toBe(12.5);
    expect(back.minMacs).toBeUndefined();
    expect(back.maxParams).toBeUndefined();
    // proto3 `optional`: an explicit 0 is present, not the same as unset
    const zero = roundTrip(common.Budget, common.Budget.fromPartial({ minMacs: 0 }));
    expect(zero.minMacs).toBe(0);
  });

  it('uint64 beyond 2^53 is refused on decode instead of silently rounded', () => {
    const w = new BinaryWriter();
    w.uint32((2 << 3) | 0).uint64(2n ** 60n); // field 2 (max_macs), varint
    expect(() => common.Budget.decode(w.finish())).toThrow(/MAX_SAFE_INTEGER/);
  });

  it('EvaluationJob and EvaluationResult round-trip with nested messages and timestamps', () => {
    const created = new Date('2025-01-02T03:04:05.678Z');
    const job = evaluation.EvaluationJob.fromPartial({
      jobId: 'job-abc',
      searchId: 's-1',
      pruningnetId: 'pn-1',
      pruningnetVersion: 3,
      network: { family: common.NetworkFamily.RESNET50, preset: common.NetworkPreset.IMAGENET },
      encoding: { genes: [0, 5, 30, 17, 30, 1] },
      settings: { recalibrationBatches: 100, batchSize: 128, validationImages: 5000, seed: 7 },
      attempt: 2,
      generation: 19,
      createTime: created,
    });
    const back = roundTrip(evaluation.EvaluationJob, job);
    expect(back).toEqual(job);
    expect(back.createTime?.getTime()).toBe(created.getTime());
    expect(back.encoding?.genes).toEqual([0, 5, 30, 17, 30, 1]);

    const result = evaluation.EvaluationResult.fromPartial({
      jobId: 'job-abc',
      status: evaluation.EvaluationStatus.FAILED,
      failureReason: evaluation.FailureReason.MAX_DELIVERIES_EXCEEDED,
      error: 'evaluator crashed 5 times',
      macs: 1_100_000_000,
      timings: { weightsMs: 1.5, recalibrationMs: 200, validationMs: 50, totalMs: 260 },
    });
    const r = roundTrip(evaluation.EvaluationResult, result);
    expect(r.status).toBe(evaluation.EvaluationStatus.FAILED);
    expect(r.failureReason).toBe(evaluation.FailureReason.MAX_DELIVERIES_EXCEEDED);
    expect(r.timings?.recalibrationMs).toBe(200);
    expect(r.measuredLatencyMs).toBeUndefined();
  });

  it('GenerateWeightsResponse oneof decodes as a discriminated union', () => {
    const header = weightgen.GenerateWeightsResponse.fromPartial({
      payload: { $case: 'header', value: { pruningnetId: 'pn', version: 1, tensorCount: 2 } },
    });
    const h = roundTrip(weightgen.GenerateWeightsResponse, header);
    expect(h.payload?.$case).toBe('header');
    if (h.payload?.$case === 'header') expect(h.payload.value.tensorCount).toBe(2);

    const chunk = weightgen.GenerateWeightsResponse.fromPartial({
      payload: {
        $case: 'chunk',
        value: { name: 'fc.weight', shape: [2], dtype: common.DataType.FLOAT32, totalBytes: 8 },
      },
    });
    const c = roundTrip(weightgen.GenerateWeightsResponse, chunk);
    expect(c.payload?.$case).toBe('chunk');
    if (c.payload?.$case === 'chunk') expect(c.payload.value.name).toBe('fc.weight');
  });

  it('an enum value from a newer schema decodes as its number, not as an error', () => {
    const w = new BinaryWriter();
    w.uint32((1 << 3) | 0).int32(42); // NetworkSpec.family = 42
    expect(common.NetworkSpec.decode(w.finish()).family).toBe(42);
  });

  it('JSON mapping uses proto names for enums and lowerCamel keys', () => {
    const req = controller.StartSearchRequest.fromPartial({
      pruningnetId: 'pn',
      budgets: [{ name: 'a', maxMacs: 5_000_000 }],
      evolution: { populationSize: 50, generations: 20, mutationProbability: 0.1 },
    });
    const json = controller.StartSearchRequest.toJSON(req) as Record<string, unknown>;
    expect(json['pruningnetId']).toBe('pn');
    expect(json['budgets']).toEqual([{ name: 'a', maxMacs: 5_000_000 }]);
    const state = controller.searchStateToJSON(controller.SearchState.RUNNING);
    expect(state).toBe('SEARCH_STATE_RUNNING');
    expect(controller.StartSearchRequest.fromJSON(json)).toEqual(req);
  });
});

describe('family and preset ids', () => {
  it('map the CLI spelling both ways', () => {
    expect(familyFromId('resnet50')).toBe(common.NetworkFamily.RESNET50);
    expect(familyFromId('mobilenetv1')).toBe(common.NetworkFamily.MOBILENET_V1);
    expect(familyToId(common.NetworkFamily.MOBILENET_V2)).toBe('mobilenetv2');
    expect(presetFromId('small')).toBe(common.NetworkPreset.SMALL);
    expect(presetToId(common.NetworkPreset.IMAGENET)).toBe('imagenet');
  });

  it('refuse unknown and unset values with the allowed list', () => {
    expect(() => familyFromId('vgg16')).toThrow(/vgg16.*mobilenetv1, mobilenetv2, resnet50/);
    expect(() => presetFromId('cifar')).toThrow(/allowed: imagenet, small/);
    expect(() => familyToId(common.NetworkFamily.UNSPECIFIED)).toThrow(RangeError);
    expect(() => presetToId(common.NetworkPreset.UNRECOGNIZED)).toThrow(RangeError);
  });
});

describe('tensors and chunks', () => {
  const values = Float32Array.from({ length: 3 * 5 * 7 }, (_, i) => i * 0.25 - 3);

  it('float32Tensor packs little-endian and survives an encode/decode round trip', () => {
    const t = float32Tensor([3, 5, 7], values);
    expect(t.data.length).toBe(values.length * 4);
    expect(t.data.readFloatLE(4)).toBe(values[1]);
    const back = roundTrip(common.Tensor, t);
    expect(back.shape).toEqual([3, 5, 7]);
    expect(Array.from(tensorToFloat32(back))).toEqual(Array.from(values));
  });

  it('refuses shape/data mismatches', () => {
    expect(() => float32Tensor([2, 2], new Float32Array(3))).toThrow(/needs 4 values, got 3/);
    const bad: common.Tensor = {
      shape: [4],
      dtype: common.DataType.FLOAT32,
      data: Buffer.alloc(12),
    };
    expect(() => tensorToFloat32(bad)).toThrow(/needs 16 bytes, got 12/);
    const noType: common.Tensor = { ...bad, dtype: common.DataType.UNSPECIFIED };
    expect(() => tensorToFloat32(noType)).toThrow(/dtype/);
  });

  it('chunks on whole elements and reassembles several tensors', async () => {
    const a = float32Tensor([3, 5, 7], values);
    const b = float32Tensor([2], Float32Array.of(1, 2));
    const empty = float32Tensor([0, 4], new Float32Array(0));
    const chunksA = [...chunkTensor('a', a, 50)]; // 48-byte chunks (12 floats)
    expect(chunksA).toHaveLength(Math.ceil(420 / 48));
    for (const c of chunksA) expect(c.data.length % 4).toBe(0);
    expect(chunksA.at(-1)!.offsetBytes + chunksA.at(-1)!.data.length).toBe(420);
    const emptyChunks = [...chunkTensor('empty', empty)];
    expect(emptyChunks).toHaveLength(1);
    const all = [...chunksA, ...chunkTensor('b', b, 4), ...emptyChunks];
    const out = await assembleTensors(all);
    expect([...out.keys()]).toEqual(['a', 'b', 'empty']);
    expect(Array.from(tensorToFloat32(out.get('a')!))).toEqual(Array.from(values));
    expect(Array.from(tensorToFloat32(out.get('b')!))).toEqual([1, 2]);
    expect(out.get('empty')!.shape).toEqual([0, 4]);
  });

  it('detects gaps, interleaving, duplicates and truncation', async () => {
    const t = float32Tensor([8], new Float32Array(8));
    const chunks = [...chunkTensor('w', t, 8)];
    const gap = new TensorAssembler();
    gap.push(chunks[0]!);
    expect(() => gap.push(chunks[2]!)).toThrow(/offset 16, expected 8/);

    const inter = new TensorAssembler();
    inter.push(chunks[0]!);
    const other = [...chunkTensor('v', t, 8)][1]!;
    expect(() => inter.push(other)).toThrow(/"v" started before tensor "w"/);

    await expect(assembleTensors([...chunks, ...chunks])).rejects.toThrow(/"w" appears twice/);
    await expect(assembleTensors(chunks.slice(0, 3))).rejects.toThrow(/ended inside tensor "w"/);
    const lying = { ...chunks[0]!, totalBytes: 12 };
    expect(() => new TensorAssembler().push(lying)).toThrow(/total_bytes 12 does not match/);
  });
});
