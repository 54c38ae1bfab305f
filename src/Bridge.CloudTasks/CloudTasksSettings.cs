namespace Bridge.CloudTasks;

/// <summary>
/// Per-method call settings. Reads and deletes are idempotent and retry UNAVAILABLE and DEADLINE_EXCEEDED;
/// creates, updates, purge, pause, resume, SetIamPolicy and RunTask are not retried, since a repeat could act twice.
/// Every method has a 20 s default deadline, as in the published service configuration.
/// </summary>
public sealed class CloudTasksSettings
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(20);

    private static CallSettings Idempotent => new() { Timeout = DefaultTimeout, Retry = RetrySettings.IdempotentDefault };

    private static CallSettings NonIdempotent => new() { Timeout = DefaultTimeout, Retry = RetrySettings.None };

    public CallSettings ListQueuesSettings { get; set; } = Idempotent;

    public CallSettings GetQueueSettings { get; set; } = Idempotent;

    public CallSettings CreateQueueSettings { get; set; } = NonIdempotent;

    public CallSettings UpdateQueueSettings { get; set; } = NonIdempotent;

    public CallSettings DeleteQueueSettings { get; set; } = Idempotent;

    public CallSettings PurgeQueueSettings { get; set; } = NonIdempotent;

    public CallSettings PauseQueueSettings { get; set; } = NonIdempotent;

    public CallSettings ResumeQueueSettings { get; set; } = NonIdempotent;

    public CallSettings GetIamPolicySettings { get; set; } = Idempotent;

    public CallSettings SetIamPolicySettings { get; set; } = NonIdempotent;

    public CallSettings TestIamPermissionsSettings { get; set; } = Idempotent;

    public CallSettings ListTasksSettings { get; set; } = Idempotent;

    public CallSettings GetTaskSettings { get; set; } = Idempotent;

    /// <summary>
    /// Not retried by default: a named task is safe to repeat (ALREADY_EXISTS), an unnamed one is not. Callers that
    /// name their tasks (the forwarder does) opt in with <see cref="RetrySettings.IdempotentDefault"/>.
    /// </summary>
    public CallSettings CreateTaskSettings { get; set; } = NonIdempotent;

    public CallSettings DeleteTaskSettings { get; set; } = Idempotent;

    public CallSettings RunTaskSettings { get; set; } = NonIdempotent;

    public CallSettings GetCmekConfigSettings { get; set; } = Idempotent;

    public CallSettings UpdateCmekConfigSettings { get; set; } = NonIdempotent;

    /// <summary>A copy, so a client keeps its settings even if the caller changes theirs later.</summary>
    public CloudTasksSettings Clone() => (CloudTasksSettings)MemberwiseClone();

    public static CloudTasksSettings GetDefault() => new();
}
