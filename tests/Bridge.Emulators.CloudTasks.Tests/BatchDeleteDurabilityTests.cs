using System.Collections.Concurrent;
using Bridge.CloudTasks;
using Bridge.CloudTasks.V2Beta3;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// BatchDeleteTasks is one commit: killed (SIGKILL) during a stream of batch deletes, the emulator comes back with
/// each batch wholly deleted or wholly there, and every acknowledged batch deleted. Runs in the durability mode of
/// <c>CLOUDTASKS_EMULATOR_DURABILITY</c> (the child inherits it; default ProcessCrash).
/// </summary>
public sealed class BatchDeleteDurabilityTests : IDisposable
{
    private readonly DurableStateFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task Every_batch_delete_is_all_or_nothing_on_disk_after_sigkill_and_every_acknowledged_one_is_done()
    {
        const int Batches = 100;
        const int PerBatch = 100;
        const int Writers = 4;
        const int AcknowledgedBeforeKill = 10;
        var queue = new QueueName("durable", "l", "batch-deletes");
        var acknowledged = new ConcurrentBag<int>();
        var killing = 0;
        var next = -1;

        using (var emulator = await EmulatorProcess.StartAsync("--data", _folder.Path))
        using (var client = new CloudTasksClientBuilder { EmulatorHost = emulator.GrpcHostPort, EmulatorDetection = EmulatorDetection.None }.Build())
        {
            await client.CreateQueueAsync(queue.Location, new Queue { Name = queue.ToString() });
            await client.PauseQueueAsync(queue);
            for (var b = 0; b < Batches; b++)
            {
                var created = await client.BatchCreateTasksAsync(queue, Names(queue, b).Select(n => new TaskMessage { Name = n.ToString(), HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } }));
                Assert.Equal(PerBatch, created.Response!.Tasks.Count);
            }

            using var enough = new SemaphoreSlim(0);
            var writers = Enumerable.Range(0, Writers).Select(_ => Task.Run(async () =>
            {
                for (var b = Interlocked.Increment(ref next); b < Batches; b = Interlocked.Increment(ref next))
                {
                    try
                    {
                        var deleted = await client.BatchDeleteTasksAsync(queue, Names(queue, b));
                        Assert.Equal(BatchDeleteTasksMetadata.Types.State.Succeeded, deleted.Metadata!.State);
                        acknowledged.Add(b);
                        if (acknowledged.Count == AcknowledgedBeforeKill)
                        {
                            enough.Release();
                        }
                    }
                    catch (Exception) when (Volatile.Read(ref killing) == 1)
                    {
                        return; // in flight when the process died: never acknowledged
                    }
                }
            })).ToList();

            Assert.True(await enough.WaitAsync(TimeSpan.FromSeconds(120)), $"only {acknowledged.Count} batch deletes acknowledged in 120 s");
            Volatile.Write(ref killing, 1);
            await emulator.KillAsync();
            await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(60));
        }

        using var restarted = await EmulatorProcess.StartAsync("--data", _folder.Path);
        using var restartedClient = new CloudTasksClientBuilder { EmulatorHost = restarted.GrpcHostPort, EmulatorDetection = EmulatorDetection.None }.Build();
        var present = new HashSet<string>();
        await foreach (var task in restartedClient.ListTasks(queue))
        {
            present.Add(task.Name);
        }

        var acknowledgedSet = acknowledged.ToHashSet();
        for (var b = 0; b < Batches; b++)
        {
            var left = Names(queue, b).Count(n => present.Contains(n.ToString()));
            Assert.True(left is 0 or PerBatch, $"batch {b}: {left} of its {PerBatch} tasks are there after the restart (a batch delete must be all or nothing)");
            Assert.True(!acknowledgedSet.Contains(b) || left == 0, $"batch {b} was acknowledged but {left} of its tasks are back");
        }
    }

    private static IEnumerable<TaskName> Names(QueueName queue, int batch) => Enumerable.Range(0, 100).Select(i => queue.Task($"b{batch}-{i}"));
}
