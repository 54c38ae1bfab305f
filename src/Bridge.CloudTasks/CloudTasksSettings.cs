namespace Bridge.CloudTasks;

/// <summary>
/// Per-method call settings, as in the published service configuration (cloudtasks_grpc_service_config.json, v2beta3).
/// Reads, deletes and the CMEK config calls are idempotent and retry UNAVAILABLE and DEADLINE_EXCEEDED until their
/// deadline; creates, updates, purge, pause, resume, SetIamPolicy and RunTask are not retried, since a repeat could
/// act twice. A CreateTask that names its task is the exception: a repeat can only answer ALREADY_EXISTS, so it is
/// retried like the idempotent calls (<see cref="CreateNamedTaskSettings"/>).
/// Every method has a 20 s default deadline, as in the published service configuration, except BatchCreateTasks and
/// BatchDeleteTasks, which the published configuration leaves without a deadline or retry (give them a per-call
/// timeout). The google.longrunning.Operations RPCs follow their own published configuration.
/// </summary>
public sealed class CloudTasksSettings
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(20);

    private static CallSettings Idempotent => new() { Timeout = DefaultTimeout, Retry = RetrySettings.IdempotentDefault };

    private static CallSettings NonIdempotent => new() { Timeout = DefaultTimeout, Retry = RetrySettings.None };

    /// <summary>Methods the published service configuration does not list: no deadline, no retry.</summary>
    private static CallSettings Unconfigured => new() { Retry = RetrySettings.None };

    /// <summary>The published google.longrunning.Operations deadline.</summary>
    public static readonly TimeSpan OperationsTimeout = TimeSpan.FromSeconds(10);

    private static CallSettings OperationsIdempotent => new() { Timeout = OperationsTimeout, Retry = RetrySettings.OperationsDefault };

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

    /// <summary>CreateTask of a task without a name: not retried, since a repeat would create a second task.</summary>
    public CallSettings CreateTaskSettings { get; set; } = NonIdempotent;

    /// <summary>
    /// CreateTask of a named task: idempotent by name (a repeat of an attempt that reached the service answers
    /// ALREADY_EXISTS), so retried like the idempotent calls.
    /// </summary>
    public CallSettings CreateNamedTaskSettings { get; set; } = Idempotent;

    /// <summary>
    /// Not retried and without a deadline, as published. A retry with the same <c>request_id</c> names the same
    /// operation, so callers that set one may opt in to retries.
    /// </summary>
    public CallSettings BatchCreateTasksSettings { get; set; } = Unconfigured;

    public CallSettings DeleteTaskSettings { get; set; } = Idempotent;

    /// <summary>Not retried and without a deadline, as published.</summary>
    public CallSettings BatchDeleteTasksSettings { get; set; } = Unconfigured;

    public CallSettings RunTaskSettings { get; set; } = NonIdempotent;

    public CallSettings GetCmekConfigSettings { get; set; } = Idempotent;

    /// <summary>Idempotent in the published configuration (a repeat sets the same key).</summary>
    public CallSettings UpdateCmekConfigSettings { get; set; } = Idempotent;

    // google.longrunning.Operations (Cloud Tasks documents GetOperation; the others are the contract's)

    public CallSettings GetOperationSettings { get; set; } = OperationsIdempotent;

    public CallSettings ListOperationsSettings { get; set; } = OperationsIdempotent;

    public CallSettings CancelOperationSettings { get; set; } = OperationsIdempotent;

    public CallSettings DeleteOperationSettings { get; set; } = OperationsIdempotent;

    /// <summary>Not in the published configuration: no deadline, no retry.</summary>
    public CallSettings WaitOperationSettings { get; set; } = Unconfigured;

    /// <summary>How <see cref="CloudTasksOperation{TResponse, TMetadata}.PollUntilCompletedAsync"/> waits by default.</summary>
    public PollSettings BatchCreateTasksPollSettings { get; set; } = PollSettings.Default;

    public PollSettings BatchDeleteTasksPollSettings { get; set; } = PollSettings.Default;

    /// <summary>A copy, so a client keeps its settings even if the caller changes theirs later.</summary>
    public CloudTasksSettings Clone() => (CloudTasksSettings)MemberwiseClone();

    public static CloudTasksSettings GetDefault() => new();
}
