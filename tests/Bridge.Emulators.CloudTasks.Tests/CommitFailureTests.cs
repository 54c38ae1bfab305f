using Bridge.CloudTasks.Iam.V1;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Bridge.Testing;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// A commit that fails (a full disk, through the SQLite store's hook before each commit): every mutating call answers
/// UNAVAILABLE and leaves memory and disk as they were; the disk is read back by a new state over the same folder
/// (the restarted process).
/// </summary>
public sealed class CommitFailureTests : IDisposable
{
    private const string Location = "projects/p/locations/l";
    private const string QueueName = Location + "/queues/q";
    private readonly DurableStateFolder _folder = new();
    private SqliteStore _store;
    private EmulatorState _state;
    private int _failing;

    public CommitFailureTests()
    {
        (_store, _state) = Open();
    }

    public void Dispose() => Teardown.All(_state, _folder);

    [Fact]
    public void A_delete_whose_commit_fails_leaves_the_task_in_memory_and_on_disk()
    {
        CreateQueueWithTasks(3);

        FailCommits();
        AssertUnavailable(() => _state.DeleteTask(new DeleteTaskRequest { Name = TaskName(1) }));

        Assert.Equal(TaskName(1), _state.GetTask(new GetTaskRequest { Name = TaskName(1) }).Name);
        Assert.Equal([TaskName(0), TaskName(1), TaskName(2)], TaskNames(_state)); // back at its place in creation order
        Reopen();
        Assert.Equal([TaskName(0), TaskName(1), TaskName(2)], TaskNames(_state));
        _state.DeleteTask(new DeleteTaskRequest { Name = TaskName(1) }); // a retry deletes it
        Assert.Equal([TaskName(0), TaskName(2)], TaskNames(_state));
    }

    [Fact]
    public void A_deleted_task_whose_commit_failed_is_still_dispatched_and_its_name_is_not_reserved()
    {
        _state.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = QueueName } });
        _state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask(0) });

        FailCommits();
        AssertUnavailable(() => _state.DeleteTask(new DeleteTaskRequest { Name = TaskName(0) }));

        Assert.Equal(TaskName(0), Assert.Single(_state.TakeDue(out _)).Task.Name);
    }

    [Fact]
    public void A_queue_creation_whose_commit_fails_leaves_no_queue_and_the_name_free()
    {
        FailCommits();
        AssertUnavailable(() => _state.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = QueueName } }));

        AssertNotFound(() => _state.GetQueue(new GetQueueRequest { Name = QueueName }));
        Reopen();
        AssertNotFound(() => _state.GetQueue(new GetQueueRequest { Name = QueueName }));
        _state.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = QueueName } });
    }

    [Fact]
    public void A_queue_update_whose_commit_fails_leaves_the_old_settings()
    {
        CreateQueueWithTasks(0);
        var before = _state.GetQueue(new GetQueueRequest { Name = QueueName });

        FailCommits();
        AssertUnavailable(() => _state.UpdateQueue(new UpdateQueueRequest
        {
            Queue = new Queue { Name = QueueName, RetryConfig = new RetryConfig { MaxAttempts = 7 } },
            UpdateMask = new FieldMask { Paths = { "retry_config.max_attempts" } },
        }));

        Assert.Equal(before, _state.GetQueue(new GetQueueRequest { Name = QueueName }));
        Reopen();
        Assert.Equal(before, _state.GetQueue(new GetQueueRequest { Name = QueueName }));
    }

    [Fact]
    public void A_pause_and_a_resume_whose_commits_fail_leave_the_state_as_it_was()
    {
        CreateQueueWithTasks(0); // paused

        FailCommits();
        AssertUnavailable(() => _state.SetQueueState(QueueName, Queue.Types.State.Running));
        Assert.Equal(Queue.Types.State.Paused, _state.GetQueue(new GetQueueRequest { Name = QueueName }).State);

        _state.SetQueueState(QueueName, Queue.Types.State.Running);
        FailCommits();
        AssertUnavailable(() => _state.SetQueueState(QueueName, Queue.Types.State.Paused));
        Assert.Equal(Queue.Types.State.Running, _state.GetQueue(new GetQueueRequest { Name = QueueName }).State);

        Reopen();
        Assert.Equal(Queue.Types.State.Running, _state.GetQueue(new GetQueueRequest { Name = QueueName }).State);
    }

    [Fact]
    public void A_queue_deletion_whose_commit_fails_leaves_the_queue_its_tasks_and_its_policy()
    {
        CreateQueueWithTasks(2);
        var policy = _state.SetIamPolicy(new SetIamPolicyRequest { Resource = QueueName, Policy = ViewerPolicy("a@example.com") });

        FailCommits();
        AssertUnavailable(() => _state.DeleteQueue(new DeleteQueueRequest { Name = QueueName }));

        Assert.Equal(QueueName, _state.GetQueue(new GetQueueRequest { Name = QueueName }).Name);
        Assert.Equal(2, TaskNames(_state).Count);
        Assert.Equal(policy, _state.GetIamPolicy(new GetIamPolicyRequest { Resource = QueueName }));
        Reopen();
        Assert.Equal(2, TaskNames(_state).Count);
        Assert.Equal(policy, _state.GetIamPolicy(new GetIamPolicyRequest { Resource = QueueName }));
        _state.DeleteQueue(new DeleteQueueRequest { Name = QueueName }); // a retry deletes it
    }

    [Fact]
    public void A_purge_whose_commit_fails_leaves_every_task_and_reserves_no_name()
    {
        CreateQueueWithTasks(3);

        FailCommits();
        AssertUnavailable(() => _state.PurgeQueue(new PurgeQueueRequest { Name = QueueName }));

        Assert.Equal([TaskName(0), TaskName(1), TaskName(2)], TaskNames(_state));
        Assert.Null(_state.GetQueue(new GetQueueRequest { Name = QueueName }).PurgeTime);
        _state.DeleteTask(new DeleteTaskRequest { Name = TaskName(2) });
        _state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask(3) }); // not taken for a purged name
        Reopen();
        Assert.Equal([TaskName(0), TaskName(1), TaskName(3)], TaskNames(_state));
        Assert.Null(_state.GetQueue(new GetQueueRequest { Name = QueueName }).PurgeTime);
    }

    [Fact]
    public void An_iam_policy_and_a_cmek_config_whose_commits_fail_are_not_kept()
    {
        CreateQueueWithTasks(0);
        var first = _state.SetIamPolicy(new SetIamPolicyRequest { Resource = QueueName, Policy = ViewerPolicy("a@example.com") });

        FailCommits();
        AssertUnavailable(() => _state.SetIamPolicy(new SetIamPolicyRequest { Resource = QueueName, Policy = ViewerPolicy("b@example.com") }));
        FailCommits();
        AssertUnavailable(() => _state.UpdateCmekConfig(new UpdateCmekConfigRequest { CmekConfig = new CmekConfig { Name = Location + "/cmekConfig", KmsKey = Location + "/keyRings/r/cryptoKeys/k" } }));

        Assert.Equal(first, _state.GetIamPolicy(new GetIamPolicyRequest { Resource = QueueName }));
        Assert.Empty(_state.GetCmekConfig(new GetCmekConfigRequest { Name = Location + "/cmekConfig" }).KmsKey);
        Reopen();
        Assert.Equal(first, _state.GetIamPolicy(new GetIamPolicyRequest { Resource = QueueName }));
        Assert.Empty(_state.GetCmekConfig(new GetCmekConfigRequest { Name = Location + "/cmekConfig" }).KmsKey);
    }

    [Fact]
    public void A_batch_delete_whose_commit_fails_deletes_none_of_its_tasks()
    {
        CreateQueueWithTasks(5);

        FailCommits();
        AssertUnavailable(() => _state.DeleteTasks(QueueName, [TaskName(0), TaskName(2), TaskName(4)]));

        Assert.Equal(5, TaskNames(_state).Count);
        Reopen();
        Assert.Equal(5, TaskNames(_state).Count);
        Assert.All(_state.DeleteTasks(QueueName, [TaskName(0), TaskName(2), TaskName(4)]), Assert.Null); // nothing was reserved
    }

    [Fact]
    public void A_batch_delete_is_one_commit_with_each_failure_at_its_index()
    {
        CreateQueueWithTasks(100);
        var names = Enumerable.Range(0, 100).Select(TaskName).ToList();
        names[10] = QueueName + "/tasks/missing";
        names[20] = Location + "/queues/other/tasks/t1";
        names[30] = "not a task name";
        names[40] = TaskName(41); // twice in the batch: the second one is not found
        var before = _store.Commits;

        var errors = _state.DeleteTasks(QueueName, names);

        Assert.Equal(before + 1, _store.Commits);
        Assert.Equal(StatusCode.NotFound, errors[10]!.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, errors[20]!.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, errors[30]!.StatusCode);
        Assert.Null(errors[40]);
        Assert.Equal(StatusCode.NotFound, errors[41]!.StatusCode);
        Assert.Equal(96, errors.Count(e => e is null));
        Assert.Equal([TaskName(10), TaskName(20), TaskName(30), TaskName(40)], TaskNames(_state));
        Reopen();
        Assert.Equal([TaskName(10), TaskName(20), TaskName(30), TaskName(40)], TaskNames(_state));
        Assert.Equal(StatusCode.AlreadyExists, Assert.Throws<RpcException>(() => _state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask(0) })).StatusCode); // tombstones kept
    }

    [Fact]
    public async Task Writes_queued_behind_a_failed_commit_fail_with_it_and_are_taken_back()
    {
        CreateQueueWithTasks(0);
        using var holding = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var commits = 0;
        _store.BeforeCommit = () =>
        {
            if (Interlocked.Increment(ref commits) == 1)
            {
                holding.Set();
                Assert.True(release.Wait(TimeSpan.FromSeconds(60)));
                throw new IOException("disk full");
            }
        };

        // The first create's commit is held, then fails; the second was queued behind it meanwhile.
        var first = _state.CreateTaskAsync(new CreateTaskRequest { Parent = QueueName, Task = HttpTask(0) });
        Assert.True(holding.Wait(TimeSpan.FromSeconds(60)));
        var second = _state.CreateTaskAsync(new CreateTaskRequest { Parent = QueueName, Task = HttpTask(1) });
        release.Set();

        Assert.Equal(StatusCode.Unavailable, (await Assert.ThrowsAsync<RpcException>(() => first.WaitAsync(TimeSpan.FromSeconds(60)))).StatusCode);
        Assert.Equal(StatusCode.Unavailable, (await Assert.ThrowsAsync<RpcException>(() => second.WaitAsync(TimeSpan.FromSeconds(60)))).StatusCode);
        Assert.Empty(TaskNames(_state));
        Reopen();
        Assert.Empty(TaskNames(_state));
    }

    private static Policy ViewerPolicy(string user) =>
        new() { Bindings = { new Binding { Role = "roles/cloudtasks.viewer", Members = { "user:" + user } } } };

    private (SqliteStore Store, EmulatorState State) Open()
    {
        var store = new SqliteStore(_folder.Path) { BeforeCommit = FailIfAsked };
        return (store, _folder.Open(store, new EmulatorOptions { QueueNameReuseDelay = TimeSpan.Zero }));
    }

    private void Reopen()
    {
        _state.Dispose();
        (_store, _state) = Open();
    }

    // Every commit fails until the failing call has answered: failing only the next one would race with a write the
    // store commits on its own just before the call's (the minute sweep's, on the state's first call).
    private void FailCommits() => Volatile.Write(ref _failing, 1);

    private void FailIfAsked()
    {
        if (Volatile.Read(ref _failing) == 1)
        {
            throw new IOException("disk full");
        }
    }

    private void CreateQueueWithTasks(int count)
    {
        _state.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = QueueName } });
        _state.SetQueueState(QueueName, Queue.Types.State.Paused);
        for (var i = 0; i < count; i++)
        {
            _state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask(i) });
        }
    }

    private static List<string> TaskNames(EmulatorState state) =>
        state.ListTasks(new ListTasksRequest { Parent = QueueName, PageSize = 1000 }).Tasks.Select(t => t.Name).ToList();

    private static string TaskName(int i) => $"{QueueName}/tasks/t{i}";

    private static TaskMessage HttpTask(int i) =>
        new() { Name = TaskName(i), HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x", Body = Google.Protobuf.ByteString.CopyFromUtf8("b") } };

    private void AssertUnavailable(Action call)
    {
        var error = Assert.Throws<RpcException>(call);
        Volatile.Write(ref _failing, 0);
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Contains("IOException", error.Status.Detail, StringComparison.Ordinal);
    }

    private static void AssertNotFound(Action call) => Assert.Equal(StatusCode.NotFound, Assert.Throws<RpcException>(call).StatusCode);
}
