using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>The SQLite store's group commit and its durability setting.</summary>
public sealed class GroupCommitTests : IDisposable
{
    private const string QueueName = "projects/p/locations/l/queues/q";
    private readonly DurableStateFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>
    /// More writes queue up than one transaction takes, so the commit is split; its first part fails. The callers of
    /// the rest wait on the last part: they must hear the failure, and nothing of the split commit may be on disk
    /// (before a fix, the rest committed and its callers were told done).
    /// </summary>
    [Fact]
    public async Task A_split_commit_whose_first_part_fails_fails_the_later_callers_and_leaves_none_of_it_on_disk()
    {
        using var holding = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var commits = 0;
        var store = _folder.OpenStore();
        try
        {
            await store.WhenDurable().WaitAsync(TimeSpan.FromSeconds(60)); // the writer's start is committed (not counted below)
            store.BeforeCommit = () =>
            {
                switch (Interlocked.Increment(ref commits))
                {
                    case 1:
                        holding.Set();
                        Assert.True(release.Wait(TimeSpan.FromSeconds(60)));
                        break;
                    case 2:
                        throw new IOException("disk full");
                }
            };
            store.SaveQueue(new Queue { Name = QueueName });
            var queueSaved = store.WhenDurable();
            Assert.True(holding.Wait(TimeSpan.FromSeconds(60))); // the writer holds the first commit: what follows queues up

            for (var i = 0; i < SqliteStore.MaxBatch + 10; i++)
            {
                store.SaveTask(StoredTask(i));
            }

            var last = store.WhenDurable();
            release.Set();

            await queueSaved.WaitAsync(TimeSpan.FromSeconds(60));
            await Assert.ThrowsAsync<IOException>(() => last.WaitAsync(TimeSpan.FromSeconds(60)));
            Assert.Equal(2, Volatile.Read(ref commits)); // the queue's commit and the failed first part; the rest never went
        }
        finally
        {
            store.Dispose();
        }

        using var reopened = _folder.OpenStore();
        var loaded = reopened.Load();
        Assert.Equal(QueueName, Assert.Single(loaded.Queues).Name);
        Assert.Empty(loaded.Tasks);
    }

    /// <summary>
    /// A commit that fails after its writes ran leaves SQLite inside the transaction: the writer must roll it back, or
    /// the next BEGIN fails and every later commit with it; nothing of the failed commit may reach the disk.
    /// </summary>
    [Fact]
    public async Task After_a_failed_commit_the_transaction_is_rolled_back_and_the_next_commit_holds()
    {
        var failNext = 1;
        var store = _folder.OpenStore();
        try
        {
            store.BeforeCommit = () =>
            {
                if (Interlocked.Exchange(ref failNext, 0) == 1)
                {
                    throw new IOException("disk full");
                }
            };
            store.SaveTask(StoredTask(0));
            await Assert.ThrowsAsync<IOException>(() => store.WhenDurable().WaitAsync(TimeSpan.FromSeconds(60)));

            store.ResumeAfterFailure(store.FailedCommits);
            store.SaveQueue(new Queue { Name = QueueName });
            store.SaveTask(StoredTask(1));
            await store.WhenDurable().WaitAsync(TimeSpan.FromSeconds(60));
        }
        finally
        {
            store.Dispose();
        }

        using var reopened = _folder.OpenStore();
        var loaded = reopened.Load();
        Assert.Equal(QueueName, Assert.Single(loaded.Queues).Name);
        Assert.Equal($"{QueueName}/tasks/t1", Assert.Single(loaded.Tasks).Name);
    }

    [Theory]
    [InlineData(EmulatorDurability.ProcessCrash, 1)] // NORMAL: the WAL is written at each commit, fsynced at checkpoints
    [InlineData(EmulatorDurability.PowerLoss, 2)]    // FULL: fsynced at each commit
    public void The_durability_setting_picks_sqlites_synchronous_mode(EmulatorDurability durability, long synchronous)
    {
        using var store = new SqliteStore(_folder.Path, durability);

        Assert.Equal(synchronous, store.Synchronous);
    }

    [Fact]
    public void The_default_durability_is_ProcessCrash()
    {
        Assert.Equal(EmulatorDurability.ProcessCrash, new EmulatorOptions().Durability);
    }

    [Theory]
    [InlineData("ProcessCrash")]
    [InlineData("powerloss")]
    public void A_durability_name_is_accepted_in_any_case(string text)
    {
        Assert.Null(EmulatorOptionsValidator.CheckDurabilityText(text));
    }

    [Theory]
    [InlineData("fsync")]
    [InlineData("1")]
    [InlineData("")]
    public void A_durability_that_is_not_one_of_the_names_is_refused_naming_the_setting_and_the_choices(string text)
    {
        var message = EmulatorOptionsValidator.CheckDurabilityText(text);

        Assert.NotNull(message);
        Assert.Contains("Emulator:Durability", message, StringComparison.Ordinal);
        Assert.Contains($"'{text}'", message, StringComparison.Ordinal);
        Assert.Contains("ProcessCrash", message, StringComparison.Ordinal);
        Assert.Contains("PowerLoss", message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_undefined_durability_value_fails_validation()
    {
        var result = new EmulatorOptionsValidator().Validate(null, new EmulatorOptions { Durability = (EmulatorDurability)7 });

        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.Contains("Emulator:Durability '7'", StringComparison.Ordinal));
    }

    private static StoredTask StoredTask(int i) => new()
    {
        QueueName = QueueName,
        Sequence = i + 1,
        Task = new TaskMessage { Name = $"{QueueName}/tasks/t{i}", HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } },
    };
}
