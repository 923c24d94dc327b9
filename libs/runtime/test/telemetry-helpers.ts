import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import { SpanKind } from '@opentelemetry/api';
import type { InMemorySpanExporter, ReadableSpan } from '@opentelemetry/sdk-trace-base';

export interface OtlpRequest {
  path: string;
  contentType: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A real OTLP/HTTP endpoint on 127.0.0.1 that stores what it receives and answers 200. */
export async function startOtlpReceiver(): Promise<{
  url: string;
  requests: OtlpRequest[];
  close(): Promise<void>;
}> {
  const requests: OtlpRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({
        path: req.url ?? '',
        contentType: String(req.headers['content-type'] ?? ''),
        headers: req.headers,
        body: Buffer.concat(chunks),
      });
      const json = String(req.headers['content-type']).includes('json');
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
      res.end(json ? '{}' : undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Finished spans by name; throws when a name is missing or repeated. */
export function spanByName(exporter: InMemorySpanExporter, name: string): ReadableSpan {
  const found = exporter.getFinishedSpans().filter((s) => s.name === name);
  if (found.length !== 1) {
    const names = exporter.getFinishedSpans().map((s) => `${s.name}(${SpanKind[s.kind]})`);
    throw new Error(`expected one span ${name}, found ${found.length}; have ${names.join(', ')}`);
  }
  return found[0]!;
}

export function spanOfKind(
  exporter: InMemorySpanExporter,
  name: string,
  kind: SpanKind,
): ReadableSpan {
  const found = exporter.getFinishedSpans().filter((s) => s.name === name && s.kind === kind);
  if (found.length !== 1)
    throw new Error(`expected one ${SpanKind[kind]} span ${name}, found ${found.length}`);
  return found[0]!;
}

export const parentId = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId;
export const spanId = (s: ReadableSpan): string => s.spanContext().spanId;
export const traceId = (s: ReadableSpan): string => s.spanContext().traceId;

const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString('utf8')) as unknown,
};

/** A JSON-coded service definition: methods ending in "Stream" are server-streaming. */
export function jsonService(service: string, methods: string[]): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const m of methods) {
    def[m] = {
      path: `/${service}/${m}`,
      requestStream: false,
      responseStream: m.endsWith('Stream'),
      requestSerialize: json.serialize,
      requestDeserialize: json.deserialize,
      responseSerialize: json.serialize,
      responseDeserialize: json.deserialize,
    };
  }
  return def as grpc.ServiceDefinition;
}

export function unary<Res>(client: grpc.Client, method: string, req: unknown): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, unknown>)[method] as (
      r: unknown,
      cb: grpc.requestCallback<Res>,
    ) => void;
    fn.call(client, req, (err, res) => (err ? reject(err) : resolve(res as Res)));
  });
}

export function serverStream<Res>(
  client: grpc.Client,
  method: string,
  req: unknown,
): Promise<Res[]> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, unknown>)[method] as (
      r: unknown,
    ) => grpc.ClientReadableStream<Res>;
    const stream = fn.call(client, req);
    const out: Res[] = [];
    stream.on('data', (m: Res) => out.push(m));
    stream.on('error', reject);
    stream.on('end', () => resolve(out));
  });
}
