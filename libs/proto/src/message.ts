import type { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';

/**
 * The binary codec every generated message value has (`common.Encoding`,
 * `evaluation.EvaluationJob`, ...), for code that moves messages generically, e.g. NATS
 * payloads: `function publish<T>(codec: MessageCodec<T>, msg: T)`.
 */
export interface MessageCodec<T> {
  encode(message: T, writer?: BinaryWriter): BinaryWriter;
  decode(input: BinaryReader | Uint8Array, length?: number): T;
}
