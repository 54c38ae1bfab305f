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
    /// <summary>The attempt's start, written only if the attempt lasts (durable store; null in memory).</summary>
    public AttemptStart? Start { get; init; }

    /// <summary>
    /// Completes once the attempt's start is durable, or at once when it was never written (the attempt ended first);
    /// faults when its commit failed. The request does not wait for it. Read after the attempt's outcome was recorded:
    /// the start is written (under the state's lock) only while the attempt is under way.
    /// </summary>
    public System.Threading.Tasks.Task Recorded => Start?.Recorded ?? System.Threading.Tasks.Task.CompletedTask;
}

/// <summary>
/// An attempt's start not written yet (durable store): most attempts end within milliseconds, so the started row
/// (dispatch_count + 1, the attempt) is written only if the attempt is still under way at <see cref="WriteAt"/>; the
/// outcome's write is then the attempt's only one. Changed only under the state's lock.
/// </summary>
internal sealed class AttemptStart(DateTimeOffset writeAt, StoredQueue queue, StoredTask task, long attemptId)
{
    public DateTimeOffset WriteAt { get; } = writeAt;

    public StoredQueue Queue { get; } = queue;

    public StoredTask Task { get; } = task;

    public long AttemptId { get; } = attemptId;

    /// <summary>The attempt's outcome was recorded (or it was dropped): there is nothing left to write.</summary>
    public bool Ended { get; set; }

    /// <summary>The start's commit, once written (see <see cref="DispatchWork.Recorded"/>).</summary>
    public System.Threading.Tasks.Task Recorded { get; set; } = System.Threading.Tasks.Task.CompletedTask;

    /// <summary>The start's queued row write, which the outcome's write supersedes when it comes before the writer took it.</summary>
    public SupersedableWrite? Write { get; set; }
}

/// <summary>What came of an attempt: the HTTP status, or null when no response came within the deadline (a struct: one per attempt, never shared).</summary>
internal readonly record struct DispatchResult(int? StatusCode, DateTimeOffset ResponseTime, TimeSpan? RetryAfter);
