/**
 * The house rules of the code base, checked by dependency-cruiser inside `npm test`
 * (scripts/test.mjs). Floors, lowest first; a package may import its own floor's
 * neighbours only where a rule below allows it, and never a higher floor:
 *
 *   0  libs/core, libs/data, libs/proto, libs/testkit   pure logic, data, contracts, test kit
 *      (the test kit may import core, data and proto)
 *   1  libs/runtime (transport, telemetry), libs/engine (all tfjs)
 *   2  libs/wire (proto <-> domain, subjects, codecs, clients)
 *   3  services/*        depend on libraries only, never on each other
 *   4  libs/cli, deploy, tests   applications: compose and start services
 *
 * See docs/design.md (the package map).
 */
const LIBS = '^libs/(core|data|proto|testkit|runtime|engine|wire)/';
const APPS = '^(libs/cli|deploy|tests)/';
const TENSORS = '(^|/)node_modules/@tensorflow/';
const TRANSPORT = '(^|/)node_modules/(@grpc|@nats-io|@opentelemetry|@bufbuild|grpc-health-check)/';

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment:
        'Import cycles make load order and ownership unclear. A lazy `await import()` back ' +
        'into a module that imports the lazy one (e.g. a command loading its heavy variant ' +
        'on demand) does not count: it runs after both are loaded.',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['dynamic-import'] } },
    },
    {
      name: 'service-imports-service',
      comment: 'Services depend on libraries only (libs/wire has the clients and codecs).',
      severity: 'error',
      from: { path: '^services/([^/]+)/' },
      to: { path: '^services/', pathNot: '^services/$1/' },
    },
    {
      name: 'service-imports-app',
      severity: 'error',
      from: { path: '^services/' },
      to: { path: APPS },
    },
    {
      name: 'library-imports-service-or-app',
      comment: 'Libraries sit below services and applications.',
      severity: 'error',
      from: { path: LIBS },
      to: { path: `^services/|${APPS}` },
    },
    {
      name: 'floor0-imports-higher-floor',
      comment: 'core, data and proto import no other workspace package.',
      severity: 'error',
      from: { path: '^libs/(core|data|proto)/src/' },
      to: { path: '^libs/([^/]+)/', pathNot: '^libs/$1/' },
    },
    {
      name: 'testkit-imports-floor0-only',
      comment: 'The test kit builds fixtures from core/data/proto only.',
      severity: 'error',
      from: { path: '^libs/testkit/src/' },
      to: { path: '^libs/(runtime|engine|wire|cli)/' },
    },
    {
      name: 'core-is-pure',
      comment: 'libs/core: pure logic, no tensor library and no transport.',
      severity: 'error',
      from: { path: '^libs/core/' },
      to: { path: `${TENSORS}|${TRANSPORT}` },
    },
    {
      name: 'core-no-io',
      comment: 'libs/core does no networking and starts no processes.',
      severity: 'error',
      from: { path: '^libs/core/src/' },
      to: {
        dependencyTypes: ['core'],
        path: '^(node:)?(net|http|https|http2|dgram|tls|child_process|cluster|worker_threads)$',
      },
    },
    {
      name: 'engine-no-transport',
      comment: 'libs/engine is the tensor floor: no transport, nothing above it.',
      severity: 'error',
      from: { path: '^libs/engine/' },
      to: { path: `${TRANSPORT}|^libs/(runtime|wire)/` },
    },
    {
      name: 'runtime-below-wire',
      comment: 'libs/runtime (transport) imports neither the engine nor wire.',
      severity: 'error',
      from: { path: '^libs/runtime/' },
      to: { path: `${TENSORS}|^libs/(engine|wire)/` },
    },
    {
      name: 'wire-no-tensors',
      comment: 'libs/wire is what crosses a process boundary: no tensor library.',
      severity: 'error',
      from: { path: '^libs/wire/' },
      to: { path: `${TENSORS}|^libs/engine/` },
    },
    {
      name: 'controller-console-no-tensors',
      comment: 'The controller and the console load no tensor library.',
      severity: 'error',
      from: { path: '^services/(controller|console)/src/' },
      to: { path: `${TENSORS}|^libs/engine/` },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that does not resolve is a missing dependency.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: ['node_modules'] },
    // the workspace's own build output and declarations (packages resolve to their sources)
    exclude: {
      path: ['^(libs|services)/[^/]+/dist/', '^(libs|services|deploy|tests)/.*\\.d\\.ts$'],
    },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.depcruise.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.json', '.d.ts'],
    },
  },
};
