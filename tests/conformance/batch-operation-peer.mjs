// The official Node.js client (@google-cloud/tasks, v2beta3) as a peer of the Bridge client's batch and
// long-running operation contract: against a server at SERVER_HOST (insecure gRPC) it calls BatchCreateTasks and
// BatchDeleteTasks, waits for each operation with its own polling (GetOperation), and prints what it decoded as one
// JSON line. Usage: SERVER_HOST=127.0.0.1:5001 REQUEST_ID=<uuid4> node batch-operation-peer.mjs
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { v2beta3 } = require('@google-cloud/tasks');
const grpc = require('@grpc/grpc-js');

const [host, port] = process.env.SERVER_HOST.split(':');
const client = new v2beta3.CloudTasksClient({ servicePath: host, port: Number(port), sslCreds: grpc.credentials.createInsecure() });
const parent = client.queuePath('p', 'l', 'q');
const result = {};

const [createOperation] = await client.batchCreateTasks({
  parent,
  requests: [0, 1, 2].map((i) => ({ parent, task: { name: `${parent}/tasks/t${i}` } })),
  requestId: process.env.REQUEST_ID,
});
result.createName = createOperation.name;
result.createDoneAtFirst = createOperation.done;
const [createResponse, createMetadata] = await createOperation.promise();
result.createResponse = createResponse.toJSON();
result.createMetadata = createMetadata.toJSON();

const [deleteOperation] = await client.batchDeleteTasks({ parent, names: [`${parent}/tasks/t0`, `${parent}/tasks/t1`] });
try {
  await deleteOperation.promise();
  result.deleteError = null;
} catch (error) {
  result.deleteError = { code: error.code, message: error.message };
}

console.log(JSON.stringify(result));
await client.close();
