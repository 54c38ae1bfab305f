using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// The one queue the state tests work on (<c>using static</c>): created paused, so its tasks are stored and swept but
/// never handed out unless a test resumes it.
/// </summary>
internal static class StateTestQueue
{
    public const string Location = "projects/p/locations/l";
    public const string QueueName = Location + "/queues/q";

    public static void CreatePausedQueue(EmulatorState state, Action<Queue>? configure = null)
    {
        var queue = new Queue { Name = QueueName };
        configure?.Invoke(queue);
        state.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = queue });
        state.SetQueueState(QueueName, Queue.Types.State.Paused);
    }

    /// <summary>An HTTP task of the queue, to a closed port: it is never sent, the queue being paused.</summary>
    public static TaskMessage HttpTask(string id) =>
        new() { Name = $"{QueueName}/tasks/{id}", HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } };
}
