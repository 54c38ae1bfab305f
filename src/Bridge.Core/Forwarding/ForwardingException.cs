namespace Bridge.Core.Forwarding;

/// <summary>Why an event was not forwarded. The name is the machine-readable reason (dead-letter reason, problem type).</summary>
public enum ForwardingFailureReason
{
    /// <summary>No route matches the event.</summary>
    UnknownRoute,

    /// <summary>The body is larger than the configured limit.</summary>
    PayloadTooLarge,

    /// <summary>The schedule time or delay is unreadable, or beyond 30 days under the Reject policy.</summary>
    InvalidSchedule,

    /// <summary>The event is malformed (bad CloudEvent, bad JSON, bad property types).</summary>
    InvalidEvent,

    /// <summary>Cloud Tasks refused the task as invalid.</summary>
    RejectedByCloudTasks,

    /// <summary>The route's queue does not exist.</summary>
    QueueNotFound,

    /// <summary>Cloud Tasks could not be reached or was overloaded; try again later.</summary>
    CloudTasksUnavailable,

    /// <summary>Bridge's identity may not create tasks (yet); IAM changes take time, so this is retried.</summary>
    NotAuthorized,
}

/// <summary>An event that was not forwarded, with a reason a caller acts on without string matching.</summary>
public sealed class ForwardingException : Exception
{
    public ForwardingException(ForwardingFailureReason reason, string description, Exception? innerException = null, TimeSpan? retryAfter = null)
        : base(description, innerException)
    {
        Reason = reason;
        RetryAfter = retryAfter;
    }

    public ForwardingFailureReason Reason { get; }

    /// <summary>True: retry later (Service Bus redelivery, HTTP 503). False: dead-letter / 4xx.</summary>
    public bool IsTransient => Reason is ForwardingFailureReason.CloudTasksUnavailable or ForwardingFailureReason.NotAuthorized;

    public TimeSpan? RetryAfter { get; }

    /// <summary>Reason as text, e.g. <c>PayloadTooLarge</c>.</summary>
    public string ReasonCode => Reason.ToString();
}
