using Bridge.CloudTasks.Iam.V1;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>What the SQLite store keeps across a restart (a new state over the same folder stands for the restarted process).</summary>
public sealed class StoreTests : IDisposable
{
    private const string Location = "projects/p/locations/l";
    private const string QueueName = Location + "/queues/q";
    private readonly DurableStateFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private EmulatorState Open() => _folder.Open(new EmulatorOptions { QueueNameReuseDelay = TimeSpan.Zero });

    [Fact]
    public void Dispatch_count_and_first_attempt_are_kept_once_an_attempt_has_lasted_the_start_write_delay()
    {
        DateTimeOffset started;
        using (var before = Open())
        {
            before.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = QueueName } });
            before.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = new TaskMessage { Name = QueueName + "/tasks/t", HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } } });
            started = _folder.Clock.GetUtcNow();
            Assert.Single(before.TakeDue(out _)); // the process dies during this attempt: no outcome is recorded
            _folder.Clock.Advance(EmulatorState.DefaultStartWriteDelay);
            Assert.Empty(before.TakeDue(out _)); // the loop's pass that writes the start of the attempt still under way
        }

        using var after = Open();
        var task = after.GetTask(new GetTaskRequest { Name = QueueName + "/tasks/t" });

        Assert.Equal(1, task.DispatchCount);
        Assert.Equal(started, task.FirstAttempt.DispatchTime.ToDateTimeOffset());
        Assert.Single(after.TakeDue(out _)); // and it is tried again
    }

    [Fact]
    public void An_attempt_cut_off_before_its_start_was_written_is_tried_again_with_the_same_dispatch_count()
    {
        using (var before = Open())
        {
            before.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = QueueName } });
            before.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = new TaskMessage { Name = QueueName + "/tasks/t", HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } } });
            Assert.Single(before.TakeDue(out _)); // the process dies within the start write delay: storage has the task as before
        }

        using var after = Open();
        Assert.Equal(0, after.GetTask(new GetTaskRequest { Name = QueueName + "/tasks/t" }).DispatchCount);
        var again = Assert.Single(after.TakeDue(out _)); // a redelivery, as at-least-once delivery allows
        Assert.Equal(0, again.RetryCount);
    }

    [Fact]
    public void A_deleted_queues_policy_is_gone_also_after_a_restart()
    {
        using (var before = Open())
        {
            before.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = QueueName } });
            before.SetIamPolicy(new SetIamPolicyRequest { Resource = QueueName, Policy = new Policy { Bindings = { new Binding { Role = "roles/cloudtasks.viewer", Members = { "user:a@example.com" } } } } });
            before.DeleteQueue(new DeleteQueueRequest { Name = QueueName });
        }

        using var after = Open();
        after.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = QueueName } });

        Assert.Empty(after.GetIamPolicy(new GetIamPolicyRequest { Resource = QueueName }).Bindings);
    }

    [Fact]
    public void A_second_store_cannot_open_a_data_folder_in_use()
    {
        using var first = _folder.OpenStore();

        var error = Assert.Throws<DataFolderRefusedException>(() => _folder.OpenStore());

        Assert.Contains("in use by another emulator", error.Message, StringComparison.Ordinal);
        Assert.Contains(_folder.Path, error.Message, StringComparison.Ordinal);
    }
}
