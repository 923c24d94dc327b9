export * from './grpc.js';
export * from './init.js';
export * from './metrics.js';
export * from './nats.js';
export * from './spans.js';
