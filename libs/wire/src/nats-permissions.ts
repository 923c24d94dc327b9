/**
 * NATS as a trust boundary: one user per service, each allowed only the subjects its work
 * needs (`metaprune up` generates the users; deploy/nats/nats.yaml carries the same lists,
 * checked equal by deploy/test). The point is who may write what:
 *
 * - only the controller publishes evaluation jobs and writes searches and the memo;
 * - evaluators take jobs, publish results and events, count attempts — nothing else;
 * - the weight generator writes training records, the latency profiler devices and tables;
 * - the console only reads;
 * - `admin` (operators, the CLI's pipelines) may do everything.
 *
 * JetStream operations are requests on `$JS.API.*` subjects, KV writes are publishes on
 * `$KV.<bucket>.<key>`, object-store writes on `$O.<bucket>.>`: the lists grant those per
 * stream, so a role cannot write (or create, update, delete messages of) another's streams.
 */
import { NATS_NAMES } from './names.js';

export type NatsRole =
  | 'controller'
  | 'evaluator'
  | 'weight-generator'
  | 'latency-profiler'
  | 'console'
  | 'admin';

export const NATS_ROLES: readonly NatsRole[] = Object.freeze([
  'controller',
  'evaluator',
  'weight-generator',
  'latency-profiler',
  'console',
  'admin',
]);

export interface NatsPermissions {
  publish: string[];
  subscribe: string[];
}

/** Bucket of the latency profiler's tables (object store). */
export const LATENCY_TABLES_BUCKET = 'metaprune_latency_tables';

const API = '$JS.API';

/** Reading a stream: info, message get, consumers (create, info, next, delete), acks. */
function readStream(stream: string): string[] {
  return [
    `${API}.STREAM.INFO.${stream}`,
    `${API}.STREAM.MSG.GET.${stream}`,
    `${API}.DIRECT.GET.${stream}`,
    `${API}.DIRECT.GET.${stream}.>`,
    `${API}.CONSUMER.CREATE.${stream}`,
    `${API}.CONSUMER.CREATE.${stream}.>`,
    `${API}.CONSUMER.INFO.${stream}.>`,
    `${API}.CONSUMER.NAMES.${stream}`,
    `${API}.CONSUMER.LIST.${stream}`,
    `${API}.CONSUMER.DELETE.${stream}.>`,
    `${API}.CONSUMER.MSG.NEXT.${stream}.>`,
    `$JS.ACK.${stream}.>`,
    `$JS.FC.${stream}.>`,
  ];
}

/** Owning a stream: creating / updating it and its durable consumers, on top of reading. */
function ownStream(stream: string, deleteMessages = false): string[] {
  return [
    ...readStream(stream),
    `${API}.STREAM.CREATE.${stream}`,
    `${API}.STREAM.UPDATE.${stream}`,
    `${API}.CONSUMER.DURABLE.CREATE.${stream}.>`,
    ...(deleteMessages ? [`${API}.STREAM.MSG.DELETE.${stream}`] : []),
  ];
}

const kvStream = (bucket: string) => `KV_${bucket}`;
const ownKv = (bucket: string) => [...ownStream(kvStream(bucket)), `$KV.${bucket}.>`];
const readKv = (bucket: string) => readStream(kvStream(bucket));

const COMMON_PUBLISH = [`${API}.INFO`, `${API}.STREAM.NAMES`, `${API}.STREAM.LIST`];
/** Replies to requests (JetStream API, KV, pushed consumers) come on inboxes. */
const COMMON_SUBSCRIBE = ['_INBOX.>'];

const N = NATS_NAMES;
const JOBS = `${N.jobsSubjectPrefix}.>`;
const RESULTS = `${N.resultsSubjectPrefix}.>`;
const EVENTS = N.eventsSubjectPrefix;

const ROLE_PERMISSIONS: Record<Exclude<NatsRole, 'admin'>, NatsPermissions> = {
  controller: {
    publish: [
      ...ownStream(N.jobsStream, true),
      ...ownStream(N.resultsStream),
      JOBS,
      // FAILED results for dead-lettered jobs
      RESULTS,
      ...ownKv(N.searchesBucket),
      ...ownKv(N.memoBucket),
      `${EVENTS}.search.>`,
    ],
    subscribe: [RESULTS, `${EVENTS}.search.>`, '$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>'],
  },
  evaluator: {
    publish: [
      ...ownStream(N.jobsStream),
      ...ownStream(N.resultsStream),
      RESULTS,
      ...ownKv(N.attemptsBucket),
      `${EVENTS}.evaluation.>`,
    ],
    subscribe: [],
  },
  'weight-generator': {
    publish: [...ownKv(N.trainingBucket), `${EVENTS}.training.>`],
    subscribe: [],
  },
  'latency-profiler': {
    publish: [
      ...ownKv(N.devicesBucket),
      ...ownStream(`OBJ_${LATENCY_TABLES_BUCKET}`),
      `$O.${LATENCY_TABLES_BUCKET}.>`,
    ],
    subscribe: [],
  },
  console: {
    publish: [
      ...readStream(N.jobsStream),
      ...readStream(N.resultsStream),
      ...readKv(N.trainingBucket),
      ...readKv(N.memoBucket),
    ],
    subscribe: [`${EVENTS}.>`],
  },
};

/** What a role may publish and subscribe to (`admin`: everything). */
export function natsPermissions(role: NatsRole): NatsPermissions {
  if (role === 'admin') return { publish: ['>'], subscribe: ['>'] };
  const p = ROLE_PERMISSIONS[role];
  return {
    publish: [...COMMON_PUBLISH, ...p.publish],
    subscribe: [...COMMON_SUBSCRIBE, ...p.subscribe],
  };
}

export interface NatsUser {
  user: string;
  password: string;
  role: NatsRole;
}

/** The `authorization { users: [...] }` block of a nats-server configuration file. */
export function natsAuthorizationBlock(users: readonly NatsUser[]): string {
  const q = (s: string) => JSON.stringify(s);
  const list = (xs: readonly string[]) => `[${xs.map(q).join(', ')}]`;
  const lines = users.map((u) => {
    const p = natsPermissions(u.role);
    // "$NAME" is a variable of nats-server's configuration (the manifests' Secret values)
    const pass = /^\$[A-Z_][A-Z0-9_]*$/.test(u.password) ? u.password : q(u.password);
    return `    { user: ${q(u.user)}, password: ${pass}, permissions: { publish: ${list(p.publish)}, subscribe: ${list(p.subscribe)} } }`;
  });
  return `authorization {\n  users: [\n${lines.join(',\n')}\n  ]\n}\n`;
}
