// CreateTask throughput of the official Node.js client against an emulator, for the benchmark's baseline.
// Usage: EMULATOR_HOST=host:port QUEUE=projects/p/locations/l/queues/q COUNT=2000 CONCURRENCY=16 [BODY_BYTES=512] node create-tasks.mjs
// Prints one JSON line: {"count":…, "seconds":…}
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../tests/conformance/package.json', import.meta.url));
const { v2beta3 } = require('@google-cloud/tasks');
const grpc = require('@grpc/grpc-js');

const [host, port] = process.env.EMULATOR_HOST.split(':');
const queue = process.env.QUEUE;
const count = Number(process.env.COUNT ?? 2000);
const concurrency = Number(process.env.CONCURRENCY ?? 16);
const url = process.env.TARGET_URL ?? 'http://127.0.0.1:9/unused';
const body = process.env.BODY_BYTES ? Buffer.alloc(Number(process.env.BODY_BYTES)) : Buffer.from('{"bench":true}');
const client = new v2beta3.CloudTasksClient({ servicePath: host, port: Number(port), sslCreds: grpc.credentials.createInsecure() });

// Warm-up: the channel and the client's first-call set-up.
for (let i = 0; i < 50; i++) {
  await client.createTask({ parent: queue, task: { httpRequest: { url } } });
}

let next = 0;
const started = process.hrtime.bigint();
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (next < count) {
    next++;
    await client.createTask({ parent: queue, task: { httpRequest: { url, body } } });
  }
}));
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log(JSON.stringify({ count, seconds }));
await client.close();
