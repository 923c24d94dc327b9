export * from './config.js';
export * from './errors.js';
export * from './grpc.js';
export * from './lifecycle.js';
export * from './log.js';
export * from './names.js';
export * from './nats.js';
export * from './telemetry/index.js';
