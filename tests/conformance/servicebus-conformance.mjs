// The official Node.js Service Bus client (@azure/service-bus) against the Service Bus emulator: send, receive,
// complete, abandon, dead-letter, defer, schedule and cancel, peek, receive-and-delete, lock renewal, a topic with a
// filtered subscription. Driven by tests/Bridge.Emulators.ServiceBus.Tests/NodeConformanceTests.cs, which starts the
// emulator with the entities below. Prints "ok - <check>" or "not ok - <check>: <why>" per check.
// Env: SERVICEBUS_CONNECTION_STRING (the emulator's, UseDevelopmentEmulator=true), QUEUE, TOPIC (subscriptions "all"
// and "red", the latter with a correlation filter color = 'red').
import assert from "node:assert/strict";
import { ServiceBusClient } from "@azure/service-bus";

const connection = process.env.SERVICEBUS_CONNECTION_STRING;
const queue = process.env.QUEUE;
const topic = process.env.TOPIC;
const client = new ServiceBusClient(connection, { retryOptions: { maxRetries: 1, timeoutInMs: 20000 } });
let failed = 0;

async function check(name, body) {
  try {
    await body();
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}: ${(e && (e.stack || e.message)) || e}`.replaceAll("\n", " | "));
  }
}

// Receives exactly `count` messages, within a bound.
async function receive(receiver, count, seconds = 20) {
  const got = [];
  const until = Date.now() + seconds * 1000;
  while (got.length < count && Date.now() < until) {
    got.push(...(await receiver.receiveMessages(count - got.length, { maxWaitTimeInMs: 1000 })));
  }
  assert.equal(got.length, count, `received ${got.length} of ${count}`);
  return got;
}

async function expectEmpty(receiver) {
  const left = await receiver.receiveMessages(1, { maxWaitTimeInMs: 500 });
  assert.equal(left.length, 0, `unexpected message ${left[0]?.messageId}`);
}

const sender = client.createSender(queue);
const receiver = client.createReceiver(queue);

await check("send one and receive it in peek-lock with its properties, then complete", async () => {
  await sender.sendMessages({ body: { order: 1 }, messageId: "n-1", correlationId: "c-1", subject: "orders", contentType: "application/json", applicationProperties: { tenant: "t1", n: 7 } });
  const [m] = await receive(receiver, 1);
  assert.deepEqual(m.body, { order: 1 });
  assert.equal(m.messageId, "n-1");
  assert.equal(m.correlationId, "c-1");
  assert.equal(m.subject, "orders");
  assert.equal(m.applicationProperties.tenant, "t1");
  assert.equal(m.applicationProperties.n, 7);
  assert.equal(m.deliveryCount, 0);
  assert.ok(m.sequenceNumber !== undefined && m.sequenceNumber.toNumber() > 0, "sequence number");
  assert.ok(m.enqueuedTimeUtc instanceof Date, "enqueued time");
  assert.ok(m.lockedUntilUtc instanceof Date && m.lockedUntilUtc > new Date(), "locked until in the future");
  assert.ok(typeof m.lockToken === "string" && m.lockToken.length === 36, "lock token");
  await receiver.completeMessage(m);
  await expectEmpty(receiver);
});

await check("send a batch and receive all of it", async () => {
  const batch = await sender.createMessageBatch();
  for (let i = 0; i < 5; i++) {
    assert.ok(batch.tryAddMessage({ body: `b-${i}`, messageId: `batch-${i}` }));
  }
  await sender.sendMessages(batch);
  const got = await receive(receiver, 5);
  assert.deepEqual(got.map((m) => m.body).sort(), ["b-0", "b-1", "b-2", "b-3", "b-4"]);
  for (const m of got) await receiver.completeMessage(m);
  await expectEmpty(receiver);
});

await check("abandon with properties to modify redelivers with deliveryCount + 1", async () => {
  await sender.sendMessages({ body: "again", messageId: "n-abandon" });
  const [first] = await receive(receiver, 1);
  await receiver.abandonMessage(first, { reason: "retry" });
  const [second] = await receive(receiver, 1);
  assert.equal(second.messageId, "n-abandon");
  assert.equal(second.deliveryCount, 1);
  assert.equal(second.applicationProperties.reason, "retry");
  await receiver.completeMessage(second);
});

await check("dead-letter with reason and description into the dead-letter queue", async () => {
  await sender.sendMessages({ body: "poison", messageId: "n-dead" });
  const [m] = await receive(receiver, 1);
  await receiver.deadLetterMessage(m, { deadLetterReason: "Poison", deadLetterErrorDescription: "cannot parse" });
  const dlq = client.createReceiver(queue, { subQueueType: "deadLetter" });
  const [dead] = await receive(dlq, 1);
  assert.equal(dead.messageId, "n-dead");
  assert.equal(dead.deadLetterReason, "Poison");
  assert.equal(dead.deadLetterErrorDescription, "cannot parse");
  await dlq.completeMessage(dead);
  await dlq.close();
});

await check("defer, then receive the deferred message by sequence number and complete it", async () => {
  await sender.sendMessages({ body: "later", messageId: "n-defer" });
  const [m] = await receive(receiver, 1);
  const sequenceNumber = m.sequenceNumber;
  await receiver.deferMessage(m);
  await expectEmpty(receiver);
  const [deferred] = await receiver.receiveDeferredMessages([sequenceNumber]);
  assert.equal(deferred.messageId, "n-defer");
  await receiver.completeMessage(deferred);
});

await check("schedule one message, cancel another; only the first arrives", async () => {
  const at = new Date(Date.now() + 1500);
  const [kept] = await sender.scheduleMessages({ body: "kept", messageId: "n-sched-1" }, at);
  const [cancelled] = await sender.scheduleMessages({ body: "cancelled", messageId: "n-sched-2" }, at);
  assert.ok(kept.toNumber() > 0 && cancelled.toNumber() > 0, "sequence numbers for scheduled messages");
  await sender.cancelScheduledMessages(cancelled);
  const [m] = await receive(receiver, 1);
  assert.equal(m.messageId, "n-sched-1");
  assert.ok(m.scheduledEnqueueTimeUtc instanceof Date, "scheduled enqueue time");
  await receiver.completeMessage(m);
  await expectEmpty(receiver);
});

await check("peek shows messages without locking them", async () => {
  await sender.sendMessages([{ body: "p1", messageId: "n-peek-1" }, { body: "p2", messageId: "n-peek-2" }]);
  const peeked = await receiver.peekMessages(10);
  assert.deepEqual(peeked.map((m) => m.messageId), ["n-peek-1", "n-peek-2"]);
  const got = await receive(receiver, 2);
  for (const m of got) await receiver.completeMessage(m);
});

await check("renew a lock: locked-until moves forward", async () => {
  await sender.sendMessages({ body: "slow", messageId: "n-renew" });
  const [m] = await receive(receiver, 1);
  const before = m.lockedUntilUtc.getTime();
  await new Promise((r) => setTimeout(r, 50));
  const after = await receiver.renewMessageLock(m);
  assert.ok(after.getTime() > before, `renewed lock ${after.toISOString()} is not after ${new Date(before).toISOString()}`);
  await receiver.completeMessage(m);
});

await check("receive-and-delete removes on delivery", async () => {
  await sender.sendMessages({ body: "gone", messageId: "n-rad" });
  const rad = client.createReceiver(queue, { receiveMode: "receiveAndDelete" });
  const [m] = await receive(rad, 1);
  assert.equal(m.messageId, "n-rad");
  await rad.close();
  assert.equal((await receiver.peekMessages(10)).filter((p) => p.messageId === "n-rad").length, 0);
});

await check("a streaming subscribe() receives and completes", async () => {
  await sender.sendMessages({ body: "streamed", messageId: "n-sub" });
  const seen = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no message within 20 s")), 20000);
    const subscription = receiver.subscribe({
      processMessage: async (m) => {
        clearTimeout(timer);
        await subscription.close();
        resolve(m.messageId);
      },
      processError: async (args) => reject(args.error),
    }, { autoCompleteMessages: true });
  });
  assert.equal(seen, "n-sub");
  await expectEmpty(receiver);
});

await check("a topic copies to every subscription whose filter matches", async () => {
  const topicSender = client.createSender(topic);
  await topicSender.sendMessages([
    { body: "r", messageId: "n-red", applicationProperties: { color: "red" } },
    { body: "b", messageId: "n-blue", applicationProperties: { color: "blue" } },
  ]);
  const all = client.createReceiver(topic, "all");
  const red = client.createReceiver(topic, "red");
  const fromAll = await receive(all, 2);
  const fromRed = await receive(red, 1);
  assert.deepEqual(fromAll.map((m) => m.messageId).sort(), ["n-blue", "n-red"]);
  assert.equal(fromRed[0].messageId, "n-red");
  for (const m of fromAll) await all.completeMessage(m);
  await red.completeMessage(fromRed[0]);
  await expectEmpty(red);
  await Promise.all([all.close(), red.close(), topicSender.close()]);
});

await check("an unknown entity is MessagingEntityNotFound", async () => {
  const nowhere = client.createSender("no-such-queue");
  await assert.rejects(nowhere.sendMessages({ body: "x" }), (e) => e.code === "MessagingEntityNotFound");
  await nowhere.close();
});

await check("a wrong key is refused", async () => {
  const wrong = new ServiceBusClient(connection.replace(/SharedAccessKey=[^;]*/, "SharedAccessKey=wrong-key"), { retryOptions: { maxRetries: 0, timeoutInMs: 10000 } });
  const s = wrong.createSender(queue);
  await assert.rejects(s.sendMessages({ body: "x" }), (e) => e.code === "UnauthorizedAccess" || /unauthori[sz]ed/i.test(`${e.code} ${e.message}`));
  await wrong.close();
});

await Promise.all([sender.close(), receiver.close()]);
await client.close();
process.exit(failed === 0 ? 0 : 1);
