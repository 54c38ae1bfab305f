using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Microsoft.Data.Sqlite;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// The writer runs a commit's queued writes as typed entries, consecutive deletions as multi-row statements: a
/// commit holding many writes of the same rows must leave the disk as the same writes committed one by one, and one
/// failing statement in the middle fails the whole commit.
/// </summary>
public sealed class StoreWriteBatchTests : IDisposable
{
    private const string QueueName = "projects/p/locations/l/queues/q";
    private static readonly DateTimeOffset Reserved = new(2026, 1, 1, 1, 0, 0, TimeSpan.Zero);
    private readonly DurableStateFolder _together = new();
    private readonly DurableStateFolder _oneByOne = new();

    public void Dispose()
    {
        _together.Dispose();
        _oneByOne.Dispose();
    }

    [Fact]
    public async Task Deletions_recreations_and_upserts_of_the_same_rows_in_one_commit_end_as_committed_one_by_one()
    {
        await WriteInOneCommit(_together, store => MixedWrites(store, () => Task.CompletedTask));
        await WriteOneByOne(_oneByOne, store => MixedWrites(store, () => store.WhenDurable().WaitAsync(TimeSpan.FromSeconds(60))));

        var together = Read(_together);
        var oneByOne = Read(_oneByOne);
        Assert.Equal(oneByOne.Tasks, together.Tasks);
        Assert.Equal(oneByOne.DeletedNames, together.DeletedNames);

        // What the writes mean, so that both sides being wrong the same way fails too.
        // t6 deleted, created again with the same key, deleted and created again, then updated; t88 and t89 never deleted.
        Assert.Equal([(7L, $"{QueueName}/tasks/t6", 3), (89L, $"{QueueName}/tasks/t88", 0), (90L, $"{QueueName}/tasks/t89", 0)], together.Tasks);
        Assert.Equal(79 + 3 + 2 + 5 + 1 + 10 + 8, together.DeletedNames.Count); // one reservation per deletion made, in the order made
        Assert.Equal($"{QueueName}/tasks/t0", together.DeletedNames[0].Name);
        Assert.Equal($"{QueueName}/tasks/t77", together.DeletedNames[^1].Name);
    }

    [Fact]
    public async Task A_statement_failing_in_the_middle_of_a_commits_deletions_fails_the_commit_and_leaves_none_of_it_on_disk()
    {
        using (var store = _together.OpenStore())
        {
            for (var i = 0; i < 100; i++)
            {
                store.SaveTask(StoredTask(i));
            }

            await store.WhenDurable().WaitAsync(TimeSpan.FromSeconds(60));
        }

        // SQLite refuses one row in the middle of a multi-row statement: as a full disk would fail it.
        Exec(_together, $"CREATE TRIGGER refuse_one BEFORE INSERT ON deleted_names WHEN NEW.name = '{QueueName}/tasks/t40' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;");

        var store2 = _together.OpenStore();
        try
        {
            await store2.WhenDurable().WaitAsync(TimeSpan.FromSeconds(60));
            var failure = await Assert.ThrowsAsync<SqliteException>(() => WriteInOneCommit(store2, s =>
            {
                s.SaveTask(StoredTask(100));
                for (var i = 0; i < 90; i++)
                {
                    s.DeleteStoredTasks([StoredTask(i)], Reserved);
                }

                return Task.CompletedTask;
            }));
            Assert.Contains("refused by the test", failure.Message, StringComparison.Ordinal);
        }
        finally
        {
            store2.Dispose();
        }

        Exec(_together, "DROP TRIGGER refuse_one;");
        var read = Read(_together);
        Assert.Equal(Enumerable.Range(1, 100).Select(s => (long)s), read.Tasks.Select(t => t.Sequence)); // t100 not written, no row deleted
        Assert.Empty(read.DeletedNames);
    }

    /// <summary>
    /// Runs of deletions of every length the writer cuts into statements (64, 16, 4, 1 rows), single and batched,
    /// between upserts, re-creations and supersedable writes of the same rows.
    /// </summary>
    private static async Task MixedWrites(SqliteStore store, Func<Task> made)
    {
        for (var i = 0; i < 100; i++)
        {
            store.SaveTask(StoredTask(i));
            await made();
        }

        store.SaveTask(StoredTask(2, executions: 1)); // sequence 3 updated, then deleted in the run below
        await made();
        for (var i = 0; i < 88; i++)
        {
            if (i % 10 != 6)
            {
                store.DeleteStoredTasks([StoredTask(i)], Reserved.AddSeconds(i)); // 79 in a row: 64 + 4 + 4 + 4 + 1 + 1 + 1
                await made();
            }
        }

        store.SaveTask(StoredTask(3, executions: 1)); // a deleted row written again (as a stale write would)
        await made();
        store.DeleteStoredTasks([StoredTask(6), StoredTask(16), StoredTask(26)], Reserved); // two batches in a row: 4 + 1
        await made();
        store.DeleteStoredTasks([StoredTask(36), StoredTask(3)], Reserved);
        await made();
        store.SaveTask(StoredTask(6, executions: 2)); // the same key created again after its deletion
        await made();
        store.DeleteStoredTasks([StoredTask(46), StoredTask(56), StoredTask(66), StoredTask(76), StoredTask(86)], Reserved);
        await made();
        store.DeleteStoredTasks([StoredTask(6)], Reserved); // deleted again
        await made();
        store.SaveTasks([StoredTask(6, executions: 1), StoredTask(95, executions: 4)]); // and created once more
        await made();
        store.SaveTaskSupersedable(StoredTask(6, executions: 3));
        await made();
        store.DeleteStoredTasks([StoredTask(96), StoredTask(97), StoredTask(98), StoredTask(99), StoredTask(95), StoredTask(94), StoredTask(93), StoredTask(92), StoredTask(91), StoredTask(90)], Reserved);
        await made();
        for (var i = 70; i < 78; i++)
        {
            store.DeleteStoredTasks([StoredTask(i)], Reserved.AddMinutes(i)); // already deleted: only reservations appended; 10 + 8 = 16 + 1 + 1
            await made();
        }
    }

    private static async Task WriteInOneCommit(DurableStateFolder folder, Func<SqliteStore, Task> writes)
    {
        using var store = folder.OpenStore();
        await WriteInOneCommit(store, writes);
    }

    /// <summary>The writer is held in a commit while <paramref name="writes"/> queue, so they all go in the next one.</summary>
    private static async Task WriteInOneCommit(SqliteStore store, Func<SqliteStore, Task> writes)
    {
        using var holding = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var commits = 0;
        await store.WhenDurable().WaitAsync(TimeSpan.FromSeconds(60));
        store.BeforeCommit = () =>
        {
            if (Interlocked.Increment(ref commits) == 1)
            {
                holding.Set();
                Assert.True(release.Wait(TimeSpan.FromSeconds(60)));
            }
        };
        store.SaveQueue(new Queue { Name = QueueName });
        var queueSaved = store.WhenDurable();
        Assert.True(holding.Wait(TimeSpan.FromSeconds(60)));
        await writes(store);
        var all = store.WhenDurable();
        release.Set();
        await queueSaved.WaitAsync(TimeSpan.FromSeconds(60));
        try
        {
            await all.WaitAsync(TimeSpan.FromSeconds(60));
        }
        finally
        {
            store.BeforeCommit = null;
        }

        Assert.Equal(2, Volatile.Read(ref commits)); // the queue's, then every write of the test in one
    }

    private static async Task WriteOneByOne(DurableStateFolder folder, Func<SqliteStore, Task> writes)
    {
        using var store = folder.OpenStore();
        store.SaveQueue(new Queue { Name = QueueName });
        await store.WhenDurable().WaitAsync(TimeSpan.FromSeconds(60));
        await writes(store);
    }

    private static StoredTask StoredTask(int i, int executions = 0) => new()
    {
        QueueName = QueueName,
        Sequence = i + 1,
        ExecutionCount = executions,
        Task = new TaskMessage { Name = $"{QueueName}/tasks/t{i}", HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } },
    };

    /// <summary>The rows as a reopened store loads them, and deleted_names as it is on disk (ids included).</summary>
    private static (List<(long Sequence, string Name, int Executions)> Tasks, List<(long Id, string Name, long Until)> DeletedNames) Read(DurableStateFolder folder)
    {
        List<(long, string, int)> tasks;
        using (var store = folder.OpenStore())
        {
            tasks = store.Load().Tasks.Select(t => (t.Sequence, t.Name, t.ExecutionCount)).OrderBy(t => t.Sequence).ToList();
        }

        using var db = Connect(folder);
        using var command = db.CreateCommand();
        command.CommandText = "SELECT id, name, until FROM deleted_names ORDER BY id";
        using var reader = command.ExecuteReader();
        var deleted = new List<(long, string, long)>();
        while (reader.Read())
        {
            deleted.Add((reader.GetInt64(0), reader.GetString(1), reader.GetInt64(2)));
        }

        return (tasks, deleted);
    }

    private static void Exec(DurableStateFolder folder, string sql)
    {
        using var db = Connect(folder);
        using var command = db.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static SqliteConnection Connect(DurableStateFolder folder)
    {
        var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(folder.Path, "cloudtasks-emulator.db"), Pooling = false }.ToString());
        db.Open();
        return db;
    }
}
