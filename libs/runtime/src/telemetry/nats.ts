/**
 * Trace propagation over NATS / JetStream: the W3C trace context travels in message headers.
 * Publishers use `publishSpan` (or `publishWithMsgIdTraced`); consumers run each message in
 * `consumeSpan`, whose parent is the publisher's span (or which links to it).
 */

import type { JetStreamClient, PubAck } from '@nats-io/jetstream';
import type { MsgHdrs, Payload } from '@nats-io/transport-node';
import {
  type Attributes,
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { createHeaders, type PublishWithMsgIdOptions, publishWithMsgId } from '../nats.js';
import { getTracer, runInSpan } from './spans.js';

export const natsHeadersSetter: TextMapSetter<MsgHdrs> = {
  set(carrier, key, value) {
    carrier.set(key, value);
  },
};

export const natsHeadersGetter: TextMapGetter<MsgHdrs | undefined> = {
  keys(carrier) {
    return carrier ? carrier.keys() : [];
  },
  get(carrier, key) {
    if (!carrier?.has(key)) return undefined;
    const values = carrier.values(key);
    return values.length === 1 ? values[0] : values;
  },
};

/** Writes the context (default: the active one) into `headers` (created when absent). */
export function injectNatsHeaders(
  headers: MsgHdrs = createHeaders(),
  ctx: Context = context.active(),
): MsgHdrs {
  propagation.inject(ctx, headers, natsHeadersSetter);
  return headers;
}

/** The context carried by a message's headers (on top of `base`, default the root context). */
export function extractNatsContext(
  headers: MsgHdrs | undefined,
  base: Context = ROOT_CONTEXT,
): Context {
  return propagation.extract(base, headers, natsHeadersGetter);
}

export interface PublishSpanOptions {
  /** Headers to add the context to (default: new headers). */
  headers?: MsgHdrs;
  /** Span name (default "publish <subject>"); use a template when subjects carry ids. */
  spanName?: string;
  /** The Nats-Msg-Id, recorded as messaging.message.id. */
  msgId?: string;
  attributes?: Attributes;
  tracer?: Tracer;
}

/**
 * Runs a publish in a PRODUCER span: `fn` gets the headers carrying this span's context and
 * must send them with the message.
 */
export function publishSpan<T>(
  subject: string,
  fn: (headers: MsgHdrs, span: Span) => T | Promise<T>,
  opts: PublishSpanOptions = {},
): Promise<T> {
  const parent = context.active();
  const span = (opts.tracer ?? getTracer()).startSpan(
    opts.spanName ?? `publish ${subject}`,
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.system': 'nats',
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'publish',
        'messaging.destination.name': subject,
        ...(opts.msgId !== undefined ? { 'messaging.message.id': opts.msgId } : {}),
        ...opts.attributes,
      },
    },
    parent,
  );
  const ctx = trace.setSpan(parent, span);
  const headers = injectNatsHeaders(opts.headers ?? createHeaders(), ctx);
  return Promise.resolve(runInSpan(span, ctx, async (s) => fn(headers, s)));
}

/** `publishWithMsgId` in a PRODUCER span, with the trace context in the message headers. */
export function publishWithMsgIdTraced(
  js: JetStreamClient,
  subject: string,
  data: Payload,
  msgId: string,
  opts: PublishWithMsgIdOptions & Omit<PublishSpanOptions, 'headers' | 'msgId'> = {},
): Promise<PubAck> {
  return publishSpan(
    subject,
    async (headers, span) => {
      const ack = await publishWithMsgId(js, subject, data, msgId, { ...opts, headers });
      span.setAttributes({
        'messaging.nats.stream': ack.stream,
        'messaging.nats.stream_sequence': ack.seq,
        'messaging.nats.duplicate': ack.duplicate,
      });
      return ack;
    },
    {
      msgId,
      ...(opts.spanName ? { spanName: opts.spanName } : {}),
      ...(opts.attributes ? { attributes: opts.attributes } : {}),
      ...(opts.tracer ? { tracer: opts.tracer } : {}),
      ...(opts.headers ? { headers: opts.headers } : {}),
    },
  );
}

/** What `consumeSpan` reads from a message (a JsMsg or a core Msg). */
export interface ConsumedMessage {
  readonly subject: string;
  readonly headers?: MsgHdrs | undefined;
  readonly info?: {
    readonly stream: string;
    readonly consumer: string;
    readonly deliveryCount: number;
    readonly streamSequence: number;
    readonly redelivered: boolean;
  };
}

export interface ConsumeSpanOptions {
  /**
   * 'parent' (default): the span is a child of the publisher's span, so the consumer's work
   * joins the publisher's trace. 'link': a new trace linked to the publisher's span (for
   * batch or fan-in work).
   */
  relation?: 'parent' | 'link';
  attributes?: Attributes;
  tracer?: Tracer;
}

/**
 * Processes one consumed message in a CONSUMER span "process <subject>" (or `name`) carrying
 * the context from its headers; JetStream delivery info becomes attributes. A thrown error is
 * recorded and rethrown (ack / nak stay the caller's job).
 */
export function consumeSpan<T>(
  msg: ConsumedMessage,
  name: string | undefined,
  fn: (span: Span) => T | Promise<T>,
  opts: ConsumeSpanOptions = {},
): Promise<T> {
  const extracted = extractNatsContext(msg.headers);
  const publisher = trace.getSpanContext(extracted);
  const asLink = opts.relation === 'link';
  const parent = asLink ? ROOT_CONTEXT : extracted;
  const info = msg.info;
  const span = (opts.tracer ?? getTracer()).startSpan(
    name ?? `process ${msg.subject}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'nats',
        'messaging.operation.type': 'process',
        'messaging.operation.name': 'process',
        'messaging.destination.name': msg.subject,
        ...(info
          ? {
              'messaging.nats.stream': info.stream,
              'messaging.consumer.group.name': info.consumer,
              'messaging.nats.stream_sequence': info.streamSequence,
              'messaging.nats.delivery_count': info.deliveryCount,
              'messaging.nats.redelivered': info.redelivered,
            }
          : {}),
        ...opts.attributes,
      },
      ...(asLink && publisher && trace.isSpanContextValid(publisher)
        ? { links: [{ context: publisher }], root: true }
        : {}),
    },
    parent,
  );
  return Promise.resolve(runInSpan(span, trace.setSpan(parent, span), async (s) => fn(s)));
}
