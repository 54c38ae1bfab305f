namespace Bridge.CloudTasks;

/// <summary>The names under which Cloud Tasks telemetry is reported, for hosts that listen and code that tags spans.</summary>
public static class CloudTasksTelemetry
{
    /// <summary>
    /// The client's ActivitySource (one client span per call, a "retry" event per retry) and Meter
    /// (<c>bridge.cloudtasks.client.retries</c> by method and status).
    /// </summary>
    public const string SourceName = "Bridge.CloudTasks";

    /// <summary>One attribute name per task concept, whoever reports it (forwarder, callback, emulator).</summary>
    public static class Tags
    {
        /// <summary>
        /// The queue's full resource name, <c>projects/…/queues/…</c>: OpenTelemetry's messaging destination, as the
        /// forwarder (sending to it), the callback and the emulator (dispatching from it) all tag it.
        /// </summary>
        public const string QueueName = "messaging.destination.name";

        /// <summary>The task's full resource name, <c>projects/…/tasks/…</c>.</summary>
        public const string TaskName = "cloudtasks.task.name";

        /// <summary>Attempts before this one (<c>X-CloudTasks-TaskRetryCount</c>).</summary>
        public const string RetryCount = "cloudtasks.task.retry_count";

        /// <summary>Attempts that got a response from the target (<c>X-CloudTasks-TaskExecutionCount</c>).</summary>
        public const string ExecutionCount = "cloudtasks.task.execution_count";

        /// <summary>The task's schedule time as the service sent it (<c>X-CloudTasks-TaskETA</c>, seconds since the epoch).</summary>
        public const string Eta = "cloudtasks.task.eta";

        /// <summary>The status of the previous attempt (<c>X-CloudTasks-TaskPreviousResponse</c>).</summary>
        public const string PreviousResponse = "cloudtasks.task.previous_response";

        /// <summary>Why the task is retried (<c>X-CloudTasks-TaskRetryReason</c>).</summary>
        public const string RetryReason = "cloudtasks.task.retry_reason";
    }
}
