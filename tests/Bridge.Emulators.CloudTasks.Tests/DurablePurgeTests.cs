using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Grpc.Core;
using static Bridge.Emulators.CloudTasks.Tests.StateTestQueue;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// A durable purge commits one small record and is acknowledged; the purged rows then move to tombstones a slice per
/// transaction. Whenever the process stops, a reopened folder has the purge whole: no purged task, every purged name
/// reserved, the tasks created after the purge kept.
/// </summary>
public sealed class DurablePurgeTests : IDisposable
{
    private const int Purged = 25_000; // two full slices of 10,000 and a partial one
    private readonly DurableStateFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async System.Threading.Tasks.Task A_purge_stopped_before_its_rows_moved_is_whole_when_the_folder_is_reopened()
    {
        using (var state = _folder.Open())
        {
            CreatePausedQueue(state);
            await CreateAsync(state, "old", Purged);
            state.PurgeQueue(new PurgeQueueRequest { Name = QueueName });
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("after") });
        } // stopping drops the slices still queued: most rows are still in the tasks table, under the record

        using (var state = _folder.Open())
        {
            Assert.Equal([$"{QueueName}/tasks/after"], state.ListTasks(new ListTasksRequest { Parent = QueueName }).Tasks.Select(t => t.Name));
            Assert.Equal(StatusCode.AlreadyExists, Assert.Throws<RpcException>(() => state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("old0") })).StatusCode);
            Assert.Equal(StatusCode.AlreadyExists, Assert.Throws<RpcException>(() => state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask($"old{Purged - 1}") })).StatusCode);
        }
    }

    [Fact]
    public async System.Threading.Tasks.Task The_purged_rows_move_to_tombstones_a_slice_per_transaction_and_the_record_goes_with_the_last()
    {
        var store = _folder.OpenStore();
        using (var state = _folder.Open(store))
        {
            CreatePausedQueue(state);
            await CreateAsync(state, "old", Purged);
            var commitsBefore = store.Commits;
            state.PurgeQueue(new PurgeQueueRequest { Name = QueueName });
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("after") });

            var pending = 1L;
            for (var look = 0; look < 10 && pending > 0; look++)
            {
                pending = store.PendingPurges; // runs on the writer, behind the slices queued so far
            }

            Assert.Equal(0, pending);
            Assert.True(store.Commits - commitsBefore >= 4, $"{store.Commits - commitsBefore} commits for the purge of {Purged:N0}: not sliced");
            var stored = store.Load();
            Assert.Equal([$"{QueueName}/tasks/after"], stored.Tasks.Select(t => t.Name));
            Assert.Equal(Purged, stored.TaskTombstones.Count);
        }
    }

    private static async System.Threading.Tasks.Task CreateAsync(EmulatorState state, string prefix, int count)
    {
        foreach (var chunk in Enumerable.Range(0, count).Chunk(1000))
        {
            var created = await state.CreateTasksAsync(QueueName, chunk.Select(i => new CreateTaskRequest { Parent = QueueName, Task = HttpTask(prefix + i) }).ToList());
            Assert.All(created, c => Assert.Null(c.Error));
        }
    }
}
