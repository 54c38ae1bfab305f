// Drives the Bridge Cloud Tasks emulator with the official Node.js client (@google-cloud/tasks; CLOUD_TASKS_API=v2beta3,
// the default, or v2) over insecure gRPC: every RPC, and the dispatch rules seen by a real HTTP target that this
// script runs itself. With v2, the v2beta3-only checks (CMEK, tombstone_ttl) are left out and checks that one engine
// serves both versions are added.
// Usage: EMULATOR_HOST=127.0.0.1:8123 EMULATOR_HTTP=http://127.0.0.1:8124 [CLOUD_TASKS_API=v2] node emulator-conformance.mjs
// Prints "ok - <check>" / "not ok - <check>: <why>" and ends with "N passed, N failed"; exits 1 on any failure.
import { createRequire } from 'node:module';
import http from 'node:http';
import crypto from 'node:crypto';
import assert from 'node:assert/strict';

const require = createRequire(import.meta.url);
const tasks = require('@google-cloud/tasks');
const grpc = require('@grpc/grpc-js');

const [host, port] = (process.env.EMULATOR_HOST ?? '127.0.0.1:8123').split(':');
const emulatorHttp = process.env.EMULATOR_HTTP ?? 'http://127.0.0.1:8124';
const api = process.env.CLOUD_TASKS_API ?? 'v2beta3';
if (!['v2', 'v2beta3'].includes(api)) throw new Error(`CLOUD_TASKS_API must be v2 or v2beta3, not ${api}`);
const isV2 = api === 'v2';
const client = new tasks[api].CloudTasksClient({ servicePath: host, port: Number(port), sslCreds: grpc.credentials.createInsecure() });

const project = 'node-conformance';
const location = 'us-central1';
const parent = client.locationPath(project, location);
const run = Date.now().toString(36);
const queuePath = (id) => client.queuePath(project, location, `${id}-${run}`);

// A real HTTP target: records requests; answers by the path's script (status codes in order, then 200).
const received = [];
const scripts = new Map();
const target = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    received.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks), at: Date.now() });
    const script = scripts.get(req.url.split('?')[0]) ?? [];
    res.statusCode = script.length > 0 ? script.shift() : 200;
    res.end();
  });
});
await new Promise((resolve) => target.listen(0, '127.0.0.1', resolve));
const targetUrl = (path) => `http://127.0.0.1:${target.address().port}${path}`;

async function waitFor(predicate, what, timeoutMs = 15000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const value = predicate();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function expectCode(promise, code) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.code, code, `expected gRPC code ${code}, got ${e.code}: ${e.message}`);
    return e;
  }
  throw new Error(`expected gRPC code ${code}, but the call succeeded`);
}

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}: ${e?.stack ?? e}`);
  }
}

const fastRetry = { maxAttempts: 5, minBackoff: { nanos: 100_000_000 }, maxBackoff: { nanos: 300_000_000 }, maxDoublings: 1 };
const main = queuePath('main');

await check('CreateQueue returns the queue RUNNING with what was asked', async () => {
  const [q] = await client.createQueue({ parent, queue: { name: main, rateLimits: { maxDispatchesPerSecond: 50 }, retryConfig: fastRetry } });
  assert.equal(q.name, main);
  assert.equal(q.state, 'RUNNING');
  assert.equal(q.rateLimits.maxDispatchesPerSecond, 50);
  assert.equal(q.retryConfig.maxAttempts, 5);
});

await check('CreateQueue of an existing queue is ALREADY_EXISTS', () => expectCode(client.createQueue({ parent, queue: { name: main } }), 6));

await check('CreateQueue with a rate over 500/s is INVALID_ARGUMENT', () =>
  expectCode(client.createQueue({ parent, queue: { name: queuePath('too-fast'), rateLimits: { maxDispatchesPerSecond: 501 } } }), 3));

await check('GetQueue returns the same queue', async () => {
  const [q] = await client.getQueue({ name: main });
  assert.equal(q.name, main);
  if (isV2) assert.equal(q.tombstoneTtl, undefined);
  else assert.equal(q.tombstoneTtl.seconds, '3600');
});

await check('GetQueue of a missing queue is NOT_FOUND', () => expectCode(client.getQueue({ name: queuePath('missing') }), 5));

await check('ListQueues pages in lexicographic order', async () => {
  const listParent = client.locationPath(project, `list-${run}`);
  for (const id of ['c', 'a', 'b']) {
    await client.createQueue({ parent: listParent, queue: { name: `${listParent}/queues/${id}` } });
  }
  const [page1, next1, raw1] = await client.listQueues({ parent: listParent, pageSize: 2 }, { autoPaginate: false });
  assert.deepEqual(page1.map((q) => q.name.split('/').pop()), ['a', 'b']);
  assert.ok(raw1.nextPageToken);
  const [page2, , raw2] = await client.listQueues({ parent: listParent, pageSize: 2, pageToken: raw1.nextPageToken }, { autoPaginate: false });
  assert.deepEqual(page2.map((q) => q.name.split('/').pop()), ['c']);
  assert.equal(raw2.nextPageToken, '');
  const all = [];
  for await (const q of client.listQueuesAsync({ parent: listParent, pageSize: 1 })) all.push(q.name.split('/').pop());
  assert.deepEqual(all, ['a', 'b', 'c']);
});

await check('UpdateQueue honours the update mask', async () => {
  const [q] = await client.updateQueue({ queue: { name: main, rateLimits: { maxDispatchesPerSecond: 20, maxBurstSize: 7 } }, updateMask: { paths: ['rate_limits.max_dispatches_per_second'] } });
  assert.equal(q.rateLimits.maxDispatchesPerSecond, 20);
  assert.notEqual(q.rateLimits.maxBurstSize, 7);
});

await check('UpdateQueue creates a missing queue', async () => {
  const name = queuePath('by-update');
  await client.updateQueue({ queue: { name } });
  const [q] = await client.getQueue({ name });
  assert.equal(q.state, 'RUNNING');
});

await check('PauseQueue and ResumeQueue change the state', async () => {
  const [paused] = await client.pauseQueue({ name: main });
  assert.equal(paused.state, 'PAUSED');
  const [resumed] = await client.resumeQueue({ name: main });
  assert.equal(resumed.state, 'RUNNING');
});

await check('IAM: GetIamPolicy, SetIamPolicy with etag, stale etag ABORTED, TestIamPermissions', async () => {
  const [empty] = await client.getIamPolicy({ resource: main });
  assert.equal(empty.bindings.length, 0);
  const [set] = await client.setIamPolicy({ resource: main, policy: { etag: empty.etag, bindings: [{ role: 'roles/cloudtasks.enqueuer', members: ['serviceAccount:node@p.iam.gserviceaccount.com'] }] } });
  assert.equal(set.bindings[0].role, 'roles/cloudtasks.enqueuer');
  await expectCode(client.setIamPolicy({ resource: main, policy: { etag: empty.etag, bindings: [] } }), 10);
  const [perms] = await client.testIamPermissions({ resource: main, permissions: ['cloudtasks.tasks.create', 'other.thing'] });
  assert.deepEqual(perms.permissions, ['cloudtasks.tasks.create']);
});

if (!isV2) await check('CMEK: UpdateCmekConfig and GetCmekConfig', async () => {
  const name = `${parent}/cmekConfig`;
  const kmsKey = `${parent}/keyRings/r/cryptoKeys/k`;
  await client.updateCmekConfig({ cmekConfig: { name, kmsKey } });
  const [config] = await client.getCmekConfig({ name });
  assert.equal(config.kmsKey, kmsKey);
});

let jwks;
await check('CreateTask dispatches over HTTP with the payload, Cloud Tasks headers and a verifiable OIDC token', async () => {
  const taskName = `${main}/tasks/first-${run}`;
  const [task] = await client.createTask({
    parent: main,
    task: {
      name: taskName,
      httpRequest: {
        url: targetUrl('/hello'), httpMethod: 'POST', body: Buffer.from('from node'),
        headers: { 'Content-Type': 'text/plain', 'X-Trace': 'abc' },
        oidcToken: { serviceAccountEmail: 'invoker@p.iam.gserviceaccount.com', audience: 'https://bridge.example' },
      },
    },
  });
  assert.equal(task.name, taskName);
  assert.equal(task.view, 'BASIC');
  const r = await waitFor(() => received.find((x) => x.url === '/hello'), 'the dispatch of /hello');
  assert.equal(r.body.toString(), 'from node');
  assert.equal(r.headers['user-agent'], 'Google-Cloud-Tasks');
  assert.equal(r.headers['x-cloudtasks-queuename'], main.split('/').pop());
  assert.equal(r.headers['x-cloudtasks-taskname'], `first-${run}`);
  assert.equal(r.headers['x-cloudtasks-taskretrycount'], '0');
  assert.equal(r.headers['x-cloudtasks-taskexecutioncount'], '0');
  assert.match(r.headers['x-cloudtasks-tasketa'], /^\d+\.\d{6}$/);
  assert.equal(r.headers['x-trace'], 'abc');
  const token = r.headers.authorization.replace(/^Bearer /, '');
  const [h, p, s] = token.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const claims = JSON.parse(Buffer.from(p, 'base64url'));
  const discovery = await (await fetch(`${emulatorHttp}/.well-known/openid-configuration`)).json();
  jwks = await (await fetch(discovery.jwks_uri.replace(/^http:\/\/localhost:\d+/, emulatorHttp))).json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, 'the token kid is in the JWKS');
  const ok = crypto.verify('RSA-SHA256', Buffer.from(`${h}.${p}`), crypto.createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(s, 'base64url'));
  assert.ok(ok, 'RS256 signature verifies');
  assert.equal(header.alg, 'RS256');
  assert.equal(claims.aud, 'https://bridge.example');
  assert.equal(claims.email, 'invoker@p.iam.gserviceaccount.com');
  assert.equal(claims.email_verified, true);
  assert.equal(claims.iss, discovery.issuer);
  assert.ok(claims.exp > claims.iat);
});

await check('A dispatched task is gone (NOT_FOUND) and its name stays reserved (ALREADY_EXISTS)', async () => {
  const taskName = `${main}/tasks/first-${run}`;
  // The target has answered; the emulator records the success before its queue is idle.
  const idle = await fetch(`${emulatorHttp}/admin/wait-idle?queue=${encodeURIComponent(main)}&timeoutSeconds=15`, { method: 'POST' });
  assert.equal(idle.status, 204);
  await expectCode(client.getTask({ name: taskName }), 5);
  await expectCode(client.createTask({ parent: main, task: { name: taskName, httpRequest: { url: targetUrl('/again') } } }), 6);
});

await check('Failed attempts are retried with RetryCount, ExecutionCount and PreviousResponse', async () => {
  scripts.set('/flaky', [500, 404]);
  await client.createTask({ parent: main, task: { httpRequest: { url: targetUrl('/flaky') } } });
  await waitFor(() => received.filter((x) => x.url === '/flaky').length >= 3, 'three attempts at /flaky');
  const attempts = received.filter((x) => x.url === '/flaky');
  assert.deepEqual(attempts.map((a) => a.headers['x-cloudtasks-taskretrycount']), ['0', '1', '2']);
  assert.deepEqual(attempts.map((a) => a.headers['x-cloudtasks-taskexecutioncount']), ['0', '0', '1']);
  assert.deepEqual(attempts.map((a) => a.headers['x-cloudtasks-taskpreviousresponse']), [undefined, '500', '404']);
});

const held = queuePath('held');
await check('Paused queue: CreateTask, GetTask (FULL), ListTasks; nothing dispatched', async () => {
  await client.createQueue({ parent, queue: { name: held } });
  await client.pauseQueue({ name: held });
  for (let i = 0; i < 3; i++) {
    await client.createTask({ parent: held, task: { name: `${held}/tasks/t${i}`, httpRequest: { url: targetUrl('/held'), body: Buffer.from(`b${i}`) } } });
  }
  const [full] = await client.getTask({ name: `${held}/tasks/t1`, responseView: 'FULL' });
  assert.equal(Buffer.from(full.httpRequest.body).toString(), 'b1');
  const [basic] = await client.getTask({ name: `${held}/tasks/t1` });
  assert.equal(basic.httpRequest.body.length, 0);
  const [tasks] = await client.listTasks({ parent: held, responseView: 'FULL' });
  assert.equal(tasks.length, 3);
  // The emulator's own record, not a wait: no attempt of any of them has started.
  assert.deepEqual(tasks.map((t) => t.dispatchCount), [0, 0, 0]);
  assert.equal(received.filter((x) => x.url === '/held').length, 0);
});

await check('RunTask dispatches at once on a paused queue', async () => {
  const [task] = await client.runTask({ name: `${held}/tasks/t0` });
  assert.equal(task.dispatchCount, 1);
  await waitFor(() => received.some((x) => x.url === '/held'), 'the RunTask dispatch');
});

await check('DeleteTask removes a task; deleting again is NOT_FOUND', async () => {
  await client.deleteTask({ name: `${held}/tasks/t1` });
  await expectCode(client.getTask({ name: `${held}/tasks/t1` }), 5);
  await expectCode(client.deleteTask({ name: `${held}/tasks/t1` }), 5);
});

await check('PurgeQueue deletes the remaining tasks', async () => {
  const [q] = await client.purgeQueue({ name: held });
  assert.ok(q.purgeTime);
  const [tasks] = await client.listTasks({ parent: held });
  assert.equal(tasks.length, 0);
});

await check('CreateTask more than 30 days ahead is INVALID_ARGUMENT', () =>
  expectCode(client.createTask({ parent: main, task: { scheduleTime: { seconds: Math.floor(Date.now() / 1000) + 31 * 86400 }, httpRequest: { url: targetUrl('/late') } } }), 3));

await check('CreateTask with a malformed name is INVALID_ARGUMENT', () =>
  expectCode(client.createTask({ parent: main, task: { name: `${main}/tasks/bad.name`, httpRequest: { url: targetUrl('/x') } } }), 3));

await check('DeleteQueue deletes it (NOT_FOUND after)', async () => {
  await client.deleteQueue({ name: held });
  await expectCode(client.getQueue({ name: held }), 5);
});

await check('Locations mixin over gRPC: GetLocation and ListLocations', async () => {
  const [loc] = await client.getLocation({ name: parent });
  assert.equal(loc.name, parent);
  assert.equal(loc.locationId, location);
  const ids = [];
  for await (const l of client.listLocationsAsync({ name: `projects/${project}` })) ids.push(l.locationId);
  assert.ok(ids.includes(location), `${location} in ${ids}`);
});

// The same client over its REST transport (fallback: 'rest'), as users without gRPC run it: errors must come back
// with their gRPC codes, which the transport reads from Google's JSON error envelope.
const { PassThroughClient } = require('google-auth-library');
const httpUrl = new URL(emulatorHttp);
const rest = new tasks[api].CloudTasksClient({ fallback: 'rest', apiEndpoint: httpUrl.hostname, port: Number(httpUrl.port), protocol: 'http', authClient: new PassThroughClient() });
const restQueue = queuePath('rest');

await check('REST transport: CreateQueue, CreateTask, GetTask', async () => {
  const [q] = await rest.createQueue({ parent, queue: { name: restQueue } });
  assert.equal(q.name, restQueue);
  await rest.pauseQueue({ name: restQueue });
  const [t] = await rest.createTask({ parent: restQueue, task: { name: `${restQueue}/tasks/once`, httpRequest: { url: targetUrl('/rest') } } });
  assert.equal(t.name, `${restQueue}/tasks/once`);
  const [got] = await rest.getTask({ name: t.name });
  assert.equal(got.name, t.name);
});

await check('REST transport: a duplicate task is ALREADY_EXISTS (deduplication works over REST)', () =>
  expectCode(rest.createTask({ parent: restQueue, task: { name: `${restQueue}/tasks/once`, httpRequest: { url: targetUrl('/rest') } } }), 6));

await check('REST transport: a missing queue is NOT_FOUND, a bad one INVALID_ARGUMENT', async () => {
  await expectCode(rest.getQueue({ name: queuePath('missing') }), 5);
  await expectCode(rest.createQueue({ parent, queue: { name: queuePath('bad'), rateLimits: { maxDispatchesPerSecond: 1000 } } }), 3);
});

if (isV2) {
  // One engine behind both versions: what v2 made, v2beta3 sees (with its own fields), and the other way round.
  const beta = new tasks.v2beta3.CloudTasksClient({ servicePath: host, port: Number(port), sslCreds: grpc.credentials.createInsecure() });

  await check('v2 and v2beta3 share queues and tasks', async () => {
    const [seen] = await beta.getQueue({ name: main });
    assert.equal(seen.name, main);
    assert.equal(seen.tombstoneTtl.seconds, '3600');
    const [t] = await beta.createTask({ parent: restQueue, task: { name: `${restQueue}/tasks/from-beta`, httpRequest: { url: targetUrl('/beta'), body: Buffer.from('b') } } });
    const [got] = await client.getTask({ name: t.name, responseView: 'FULL' });
    assert.equal(got.httpRequest.url, targetUrl('/beta'));
    assert.equal(Buffer.from(got.httpRequest.body).toString(), 'b');
    await client.deleteTask({ name: t.name });
  });

  await check('v2 App Engine routing override is v2beta3\'s app_engine_http_queue', async () => {
    const name = queuePath('gae');
    await client.createQueue({ parent, queue: { name, appEngineRoutingOverride: { service: 'worker' } } });
    const [seen] = await beta.getQueue({ name });
    assert.equal(seen.appEngineHttpQueue.appEngineRoutingOverride.service, 'worker');
    const [q] = await client.updateQueue({ queue: { name, appEngineRoutingOverride: { service: 'other' } }, updateMask: { paths: ['app_engine_routing_override'] } });
    assert.equal(q.appEngineRoutingOverride.service, 'other');
    await client.deleteQueue({ name });
  });

  await check('v2 UpdateQueue without a mask keeps what only v2beta3 sets; a v2beta3-only mask path is INVALID_ARGUMENT', async () => {
    const name = queuePath('ttl');
    await beta.createQueue({ parent, queue: { name, tombstoneTtl: { seconds: 7200 } } });
    const [q] = await client.updateQueue({ queue: { name, rateLimits: { maxDispatchesPerSecond: 3 } } });
    assert.equal(q.rateLimits.maxDispatchesPerSecond, 3);
    const [seen] = await beta.getQueue({ name });
    assert.equal(seen.tombstoneTtl.seconds, '7200');
    await expectCode(client.updateQueue({ queue: { name }, updateMask: { paths: ['tombstone_ttl'] } }), 3);
    await client.deleteQueue({ name });
  });
  await beta.close();
}

await rest.deleteQueue({ name: restQueue });
await rest.close();
await client.close();
target.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
