using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Bridge.Testing;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>What each attempt costs and what survives when storing its outcome fails: the OIDC token cache, a failed outcome commit.</summary>
public sealed class DispatchOutcomeTests : IAsyncLifetime
{
    private const string Location = "projects/p/locations/l";
    private const string QueueName = Location + "/queues/q";
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private HttpTargetServer _target = null!;

    public async Task InitializeAsync() => _target = await HttpTargetServer.StartAsync();

    public async Task DisposeAsync() => await _target.DisposeAsync();

    [Theory]
    [InlineData(200)] // memory deleted the task: storage must too, with its tombstone
    [InlineData(503)] // memory scheduled a retry: storage must have the attempt's response and the new schedule
    public async Task An_outcome_whose_commit_failed_is_written_again_until_storage_agrees_with_memory(int status)
    {
        var store = new StagedStore();
        using var state = new EmulatorState(store, new EmulatorOptions(), _clock);
        state.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = QueueName } });
        var name = QueueName + "/tasks/t";
        await state.CreateTaskAsync(new CreateTaskRequest { Parent = QueueName, Task = new TaskMessage { Name = name, HttpRequest = new HttpRequest { Url = _target.Url("/x").ToString() } } });

        // The request reaches the target after the attempt's start is committed: the next commit is the outcome's.
        _target.Respond = (_, _) =>
        {
            store.FailNextCommit = true;
            return new TargetResponse(status);
        };
        using var issuer = new OidcIssuer(OidcIssuer.CreateSigningKeyPem(), () => "http://localhost", _clock, TimeSpan.FromHours(1));
        using var dispatcher = new Dispatcher(state, issuer, new EmulatorOptions(), _clock, NullLogger<Dispatcher>.Instance);
        await dispatcher.StartAsync(CancellationToken.None);
        try
        {
            await _target.WaitForRequestsAsync(1);
            await store.WaitUntilAsync(() => store.FailedCommits == 1 && Agrees(state, store, name), TimeSpan.FromSeconds(30));
        }
        finally
        {
            await dispatcher.StopAsync(CancellationToken.None);
        }

        Assert.Equal(1, store.FailedCommits);
        if (status == 200)
        {
            Assert.Equal(StatusCode.NotFound, Assert.Throws<RpcException>(() => state.GetTask(new GetTaskRequest { Name = name })).StatusCode);
            Assert.False(store.Rows.ContainsKey(name));
            Assert.True(store.Tombstones.ContainsKey(name));
        }
        else
        {
            var stored = TaskMessage.Parser.ParseFrom(store.Rows[name]);
            Assert.Equal(1, stored.DispatchCount);
            Assert.Equal(1, stored.ResponseCount);
            Assert.Equal((int)Google.Rpc.Code.Unavailable, stored.LastAttempt.ResponseStatus.Code);
            Assert.True(stored.ScheduleTime.ToDateTimeOffset() > _clock.GetUtcNow(), "the retry's schedule is stored");
        }
    }

    [Fact]
    public void An_id_token_is_signed_once_per_account_and_audience_and_signed_again_near_its_expiry()
    {
        var issuerUrl = "http://localhost:1";
        using var issuer = new OidcIssuer(OidcIssuer.CreateSigningKeyPem(), () => issuerUrl, _clock, TimeSpan.FromHours(1));
        const string Account = "invoker@p.iam.gserviceaccount.com";

        var first = issuer.GetIdToken(Account, "https://a");
        Assert.Equal(first, issuer.GetIdToken(Account, "https://a"));
        Assert.NotEqual(first, issuer.GetIdToken(Account, "https://b"));
        Assert.NotEqual(first, issuer.GetIdToken("other@p.iam.gserviceaccount.com", "https://a"));

        _clock.Advance(TimeSpan.FromMinutes(54)); // more than 5 minutes left: still good
        Assert.Equal(first, issuer.GetIdToken(Account, "https://a"));

        _clock.Advance(TimeSpan.FromMinutes(1)); // 5 minutes left: a new one
        var renewed = issuer.GetIdToken(Account, "https://a");
        Assert.NotEqual(first, renewed);
        Assert.Equal(_clock.GetUtcNow().ToUnixTimeSeconds(), IssuedAt(renewed));

        issuerUrl = "http://localhost:2"; // the issuer changed (the HTTP port became known): its own tokens
        Assert.NotEqual(renewed, issuer.GetIdToken(Account, "https://a"));
    }

    private static long IssuedAt(string jwt)
    {
        var payload = jwt.Split('.')[1].Replace('-', '+').Replace('_', '/');
        payload = payload.PadRight(payload.Length + ((4 - (payload.Length % 4)) % 4), '=');
        using var json = System.Text.Json.JsonDocument.Parse(Convert.FromBase64String(payload));
        return json.RootElement.GetProperty("iat").GetInt64();
    }

    /// <summary>Storage has the task exactly as memory has it (or neither has it).</summary>
    private static bool Agrees(EmulatorState state, StagedStore store, string name)
    {
        TaskMessage? inMemory;
        try
        {
            inMemory = state.GetTask(new GetTaskRequest { Name = name, ResponseView = TaskMessage.Types.View.Full });
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            inMemory = null;
        }

        if (!store.Rows.TryGetValue(name, out var row))
        {
            return inMemory is null;
        }

        var stored = TaskMessage.Parser.ParseFrom(row);
        stored.Name = name;
        stored.View = TaskMessage.Types.View.Full; // set when presented
        return inMemory is not null && stored.Equals(inMemory);
    }

    /// <summary>
    /// Storage as SQLite behaves for the state: writes wait in a pending list and go in at a commit, all or none;
    /// the next commit can be made to fail (a full disk), dropping its writes.
    /// </summary>
    private sealed class StagedStore : DelegatingEmulatorStore
    {
        private readonly Lock _gate = new();
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte[]> _rows = new(StringComparer.Ordinal);
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, DateTimeOffset> _tombstones = new(StringComparer.Ordinal);
        private List<Action> _pending = [];
        private TaskCompletionSource _committed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _failedCommits;
        private int _failNextCommit;

        public bool FailNextCommit
        {
            get => Volatile.Read(ref _failNextCommit) == 1;
            set => Volatile.Write(ref _failNextCommit, value ? 1 : 0);
        }

        public IReadOnlyDictionary<string, byte[]> Rows => _rows;

        public IReadOnlyDictionary<string, DateTimeOffset> Tombstones => _tombstones;

        // The test's count; the state sees the base's (none), as it always has with this store.
        public new int FailedCommits => Volatile.Read(ref _failedCommits);

        public override Task WhenDurable()
        {
            List<Action> writes;
            bool fail;
            lock (_gate)
            {
                if (_pending.Count == 0)
                {
                    return Task.CompletedTask;
                }

                (writes, _pending) = (_pending, []);
                fail = FailNextCommit;
                FailNextCommit = false;
            }

            if (fail)
            {
                Interlocked.Increment(ref _failedCommits);
                Committed();
                return Task.FromException(new IOException("disk full"));
            }

            foreach (var write in writes)
            {
                write();
            }

            Committed();
            return Task.CompletedTask;
        }

        /// <summary>Waits (each commit wakes it) until the condition holds.</summary>
        public async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout)
        {
            using var cts = new CancellationTokenSource(timeout);
            while (true)
            {
                Task next;
                lock (_gate)
                {
                    next = _committed.Task;
                }

                if (condition())
                {
                    return;
                }

                try
                {
                    await next.WaitAsync(cts.Token);
                }
                catch (OperationCanceledException)
                {
                    Assert.Fail($"Storage did not come to agree with memory within {timeout} ({FailedCommits} failed commits).");
                }
            }
        }

        public override void SaveTask(StoredTask task) => SaveTasks([task]);

        public override void SaveTasks(IReadOnlyCollection<StoredTask> tasks)
        {
            var rows = tasks.Select(t => (t.Name, t.Serialized)).ToList(); // a snapshot: the serialized form is replaced, never changed
            Stage(() =>
            {
                foreach (var (name, data) in rows)
                {
                    _rows[name] = data;
                }
            });
        }

        public override void DeleteTasks(IReadOnlyCollection<string> names, DateTimeOffset reservedUntil)
        {
            var copy = names.ToList();
            Stage(() =>
            {
                foreach (var name in copy)
                {
                    _rows.TryRemove(name, out _);
                    _tombstones[name] = reservedUntil;
                }
            });
        }

        public override void Clear() => Stage(() =>
        {
            _rows.Clear();
            _tombstones.Clear();
        });

        private void Stage(Action write)
        {
            lock (_gate)
            {
                _pending.Add(write);
            }
        }

        private void Committed()
        {
            TaskCompletionSource previous;
            lock (_gate)
            {
                previous = _committed;
                _committed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            previous.TrySetResult();
        }
    }
}
