import * as grpc from '@grpc/grpc-js';

/** A JSON-encoded test service, so gRPC tests need no generated code. */
const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString('utf8')) as unknown,
};

export const echoDefinition: grpc.ServiceDefinition = {
  Echo: {
    path: '/test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
  Count: {
    path: '/test.Echo/Count',
    requestStream: false,
    responseStream: true,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};

export const EchoClient = grpc.makeGenericClientConstructor(echoDefinition, 'Echo');

export function echoClient(address: string, options: grpc.ChannelOptions = {}): grpc.Client {
  return new EchoClient(address, grpc.credentials.createInsecure(), options);
}

export interface EchoRequest {
  text?: string;
  mode?: string;
  n?: number;
  delayMs?: number;
}

/** Unary call resolving to the response or rejecting with the ServiceError. */
export function callEcho(client: grpc.Client, req: EchoRequest): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, unknown>)['Echo'] as (
      r: EchoRequest,
      cb: grpc.requestCallback<unknown>,
    ) => void;
    fn.call(client, req, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** Server-streaming call collecting all messages, or rejecting with the status error. */
export function callCount(
  client: grpc.Client,
  req: EchoRequest,
): Promise<{ messages: unknown[]; error?: grpc.ServiceError }> {
  return new Promise((resolve) => {
    const fn = (client as unknown as Record<string, unknown>)['Count'] as (
      r: EchoRequest,
    ) => grpc.ClientReadableStream<unknown>;
    const stream = fn.call(client, req);
    const messages: unknown[] = [];
    stream.on('data', (m: unknown) => messages.push(m));
    stream.on('error', (error: grpc.ServiceError) => resolve({ messages, error }));
    stream.on('end', () => resolve({ messages }));
  });
}
