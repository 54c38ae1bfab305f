using Bridge.CloudTasks.V2Beta3;
using Task = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>One attempt to hand out: snapshots, so the dispatcher works without the state's lock.</summary>
internal sealed record DispatchWork(
    long AttemptId,
    Task Task,
    Queue Queue,
    int RetryCount,
    int ExecutionCount,
    int PreviousResponse,
    DateTimeOffset Eta,
    DateTimeOffset DispatchTime)
{
    /// <summary>Completes once the attempt's start is durable (faults when its commit failed); the request does not wait for it.</summary>
    public System.Threading.Tasks.Task Recorded { get; init; } = System.Threading.Tasks.Task.CompletedTask;

    /// <summary>The start's queued row write (durable store), which the outcome's write supersedes when it comes first.</summary>
    public SupersedableWrite? StartWrite { get; init; }
}

/// <summary>What came of an attempt: the HTTP status, or null when no response came within the deadline (a struct: one per attempt, never shared).</summary>
internal readonly record struct DispatchResult(int? StatusCode, DateTimeOffset ResponseTime, TimeSpan? RetryAfter);
