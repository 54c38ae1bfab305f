using System.Collections.Concurrent;
using Bridge.CloudTasks;
using Bridge.CloudTasks.Iam.V1;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Testing;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>With <c>--data</c>, state survives restarts, and an acknowledged CreateTask survives SIGKILL.</summary>
public sealed class DurabilityTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private readonly DurableStateFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task Queues_tasks_tombstones_policies_and_the_signing_key_survive_a_restart()
    {
        await using var target = await HttpTargetServer.StartAsync();
        QueueName queue;
        string jwks;
        await using (var first = await EmulatorHost.StartAsync(o => o.Data = _folder.Path))
        {
            queue = await first.CreateQueueAsync(q => q.RateLimits = new RateLimits { MaxDispatchesPerSecond = 42 });
            await first.Client.PauseQueueAsync(queue);
            await first.Client.CreateTaskAsync(queue, new TaskMessage { Name = queue.Task("kept").ToString(), HttpRequest = new HttpRequest { Url = target.Url("/kept").ToString() } });
            await first.Client.CreateTaskAsync(queue, new TaskMessage { Name = queue.Task("gone").ToString(), HttpRequest = new HttpRequest { Url = target.Url("/gone").ToString() } });
            await first.Client.DeleteTaskAsync(queue.Task("gone"));
            await first.Client.SetIamPolicyAsync(queue, new Policy { Bindings = { new Binding { Role = "roles/cloudtasks.enqueuer", Members = { "user:a@example.com" } } } });
            using var http = new HttpClient();
            jwks = await http.GetStringAsync(new Uri(first.HttpAddress, "/oauth2/v3/certs"));
        }

        await using var second = await EmulatorHost.StartAsync(o => o.Data = _folder.Path);
        var restored = await second.Client.GetQueueAsync(queue);
        Assert.Equal(42, restored.RateLimits.MaxDispatchesPerSecond);
        Assert.Equal(Queue.Types.State.Paused, restored.State);
        Assert.NotNull(await second.Client.GetTaskAsync(queue.Task("kept")));
        Assert.Equal(CloudTasksFailureReason.AlreadyExists, (await Assert.ThrowsAsync<CloudTasksException>(() =>
            second.Client.CreateTaskAsync(queue, new TaskMessage { Name = queue.Task("gone").ToString(), HttpRequest = new HttpRequest { Url = target.Url("/gone").ToString() } }))).Reason);
        Assert.Equal("roles/cloudtasks.enqueuer", Assert.Single((await second.Client.GetIamPolicyAsync(queue)).Bindings).Role);
        using (var http = new HttpClient())
        {
            Assert.Equal(jwks, await http.GetStringAsync(new Uri(second.HttpAddress, "/oauth2/v3/certs")));
        }

        await second.Client.ResumeQueueAsync(queue);
        Assert.Equal("/kept", Assert.Single(await target.WaitForRequestsAsync(1)).PathAndQuery);
    }

    [Fact]
    public async Task A_queue_named_by_queues_is_there_after_a_restart_even_when_it_was_deleted_before()
    {
        var queue = new QueueName("configured", "l", "q");
        using (var first = await EmulatorProcess.StartAsync("--data", _folder.Path, "--queues", "configured/l/q"))
        using (var client = first.CreateClient())
        {
            Assert.Equal(Queue.Types.State.Running, (await client.GetQueueAsync(queue)).State);
            await client.DeleteQueueAsync(queue); // reserves the name for 7 days
            await first.KillAsync();
        }

        using var second = await EmulatorProcess.StartAsync("--data", _folder.Path, "--queues", "configured/l/q");
        using var secondClient = second.CreateClient();

        Assert.Equal(Queue.Types.State.Running, (await secondClient.GetQueueAsync(queue)).State);
    }

    /// <summary>64 writers: many creates share each commit (group commit), and still none acknowledged is lost.</summary>
    [Theory]
    [InlineData(4, 150)]
    [InlineData(64, 1000)]
    public async Task Every_acknowledged_task_survives_sigkill_during_a_stream_of_creates_and_is_dispatched_after_restart(int writerCount, int acknowledgedBeforeKill)
    {
        await using var target = await HttpTargetServer.StartAsync();
        var queue = new QueueName("durable", "l", "stream");
        var acknowledged = await WriteUntilKilledAsync(queue, writerCount, acknowledgedBeforeKill, async (client, w, i) =>
        {
            var name = queue.Task($"w{w}-{i}");
            await client.CreateTaskAsync(queue, new TaskMessage { Name = name.ToString(), HttpRequest = new HttpRequest { Url = target.Url("/durable").ToString() } });
            return [name.TaskId];
        });

        using var restarted = await EmulatorProcess.StartAsync("--data", _folder.Path);
        using var restartedClient = restarted.CreateClient();
        var present = await TaskIdsAsync(restartedClient, queue);
        AssertNoneLost(acknowledged, present);

        output.WriteLine($"acknowledged before SIGKILL: {acknowledged.Count}; present after restart: {present.Count}; lost: 0");
        await restartedClient.ResumeQueueAsync(queue);
        await target.WaitForRequestsAsync(present.Count, TimeSpan.FromSeconds(120));
        var dispatched = target.Requests.Select(r => r.Header("X-CloudTasks-TaskName")).ToHashSet();
        var undispatched = acknowledged.Where(a => !dispatched.Contains(a)).ToList();
        Assert.True(undispatched.Count == 0, $"{undispatched.Count} acknowledged tasks never dispatched: {string.Join(", ", undispatched.Take(10))}");
    }

    /// <summary>Batches (one commit each) from 8 writers: every task of an acknowledged batch survives SIGKILL.</summary>
    [Fact]
    public async Task Every_task_of_an_acknowledged_batch_survives_sigkill_during_a_stream_of_batches()
    {
        const int Writers = 8;
        const int BatchSize = 50;
        const int AcknowledgedBeforeKill = 40;
        var queue = new QueueName("durable", "l", "batches");
        var acknowledged = await WriteUntilKilledAsync(queue, Writers, AcknowledgedBeforeKill, async (client, w, b) =>
        {
            var ids = Enumerable.Range(0, BatchSize).Select(i => $"w{w}-b{b}-{i}").ToList();
            var operation = await client.BatchCreateTasksAsync(queue, ids.Select(id => new TaskMessage { Name = queue.Task(id).ToString(), HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } }));
            Assert.Equal(BatchSize, operation.Response!.Tasks.Count);
            return ids;
        });

        using var restarted = await EmulatorProcess.StartAsync("--data", _folder.Path);
        using var restartedClient = restarted.CreateClient();
        var present = await TaskIdsAsync(restartedClient, queue);
        AssertNoneLost(acknowledged, present);
        Assert.Equal(0, present.Count % BatchSize); // a batch is one commit: on disk whole or not at all
        output.WriteLine($"acknowledged before SIGKILL: {acknowledged.Count}; present after restart: {present.Count}");
    }

    /// <summary>
    /// Starts the emulator on the data folder with <paramref name="queue"/> paused, runs <paramref name="writerCount"/>
    /// writers that call <paramref name="write"/> (writer, round: the task ids it got acknowledged) in a loop, and
    /// SIGKILLs the emulator once <paramref name="writesBeforeKill"/> writes were acknowledged, with the writers still
    /// writing. Returns every task id acknowledged before the kill.
    /// </summary>
    private async Task<IReadOnlyCollection<string>> WriteUntilKilledAsync(QueueName queue, int writerCount, int writesBeforeKill, Func<CloudTasksClient, int, int, Task<IEnumerable<string>>> write)
    {
        var acknowledged = new ConcurrentBag<string>();
        var killing = 0;
        var acknowledgedWrites = 0;
        using var emulator = await EmulatorProcess.StartAsync("--data", _folder.Path);
        using var client = emulator.CreateClient();
        await client.CreateQueueAsync(queue.Location, new Queue { Name = queue.ToString() });
        await client.PauseQueueAsync(queue);
        using var stop = new CancellationTokenSource();
        using var enough = new SemaphoreSlim(0);
        var writers = Enumerable.Range(0, writerCount).Select(w => Task.Run(async () =>
        {
            for (var round = 0; !stop.IsCancellationRequested; round++)
            {
                try
                {
                    foreach (var id in await write(client, w, round))
                    {
                        acknowledged.Add(id);
                    }

                    if (Interlocked.Increment(ref acknowledgedWrites) == writesBeforeKill)
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

        // The writers are still writing when the kill lands: mid-stream.
        Assert.True(await enough.WaitAsync(TimeSpan.FromSeconds(120)), $"only {Volatile.Read(ref acknowledgedWrites)} writes acknowledged in 120 s");
        Volatile.Write(ref killing, 1); // from here on a failed call is one the kill cut off: never acknowledged
        await emulator.KillAsync();
        await stop.CancelAsync();
        await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(60));
        return acknowledged;
    }

    private static async Task<HashSet<string>> TaskIdsAsync(CloudTasksClient client, QueueName queue)
    {
        var present = new HashSet<string>();
        await foreach (var task in client.ListTasks(queue))
        {
            present.Add(TaskName.Parse(task.Name).TaskId);
        }

        return present;
    }

    private static void AssertNoneLost(IReadOnlyCollection<string> acknowledged, HashSet<string> present)
    {
        var lost = acknowledged.Where(a => !present.Contains(a)).ToList();
        Assert.True(lost.Count == 0, $"{lost.Count} of {acknowledged.Count} acknowledged tasks lost: {string.Join(", ", lost.Take(10))}");
    }
}
