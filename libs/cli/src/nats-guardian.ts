/**
 * Runs nats-server for `metaprune up` and ends it when `up` dies, however it dies: stdin is
 * a pipe from `up` that is never written, so the kernel closes it when `up` exits (SIGKILL
 * included). nats-server cannot watch its parent itself. Signals sent to the guardian are
 * passed on; it exits with the server's status.
 *
 *   node nats-guardian.js <nats-server> [args...]
 */
import { spawn } from 'node:child_process';

const [bin, ...args] = process.argv.slice(2);
if (!bin) {
  process.stderr.write('usage: nats-guardian <nats-server> [args...]\n');
  process.exit(2);
}
const server = spawn(bin, args, { stdio: ['ignore', 'inherit', 'inherit'] });
server.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
server.on('error', (err) => {
  process.stderr.write(`nats-guardian: ${err.message}\n`);
  process.exit(1);
});
for (const sig of ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP'] as const) {
  process.on(sig, () => server.kill(sig));
}
let orphaned = false;
const parentGone = () => {
  if (orphaned) return;
  orphaned = true;
  server.kill('SIGTERM');
  setTimeout(() => server.kill('SIGKILL'), 10_000).unref();
};
process.stdin.on('end', parentGone);
process.stdin.on('close', parentGone);
process.stdin.on('error', parentGone);
process.stdin.resume();
