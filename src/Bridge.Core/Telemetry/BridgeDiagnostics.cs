using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Reflection;

namespace Bridge.Core.Telemetry;

/// <summary>Bridge's ActivitySource and Meter (both named <see cref="SourceName"/>, for hosts to listen to), and its tag names.</summary>
public static class BridgeDiagnostics
{
    public const string SourceName = "Bridge.Core";

    private static readonly string Version = typeof(BridgeDiagnostics).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    internal static readonly ActivitySource ActivitySource = new(SourceName, Version);

    internal static readonly Meter Meter = new(SourceName, Version);

    internal static readonly Counter<long> Forwarded = Meter.CreateCounter<long>("bridge.events.forwarded", "{event}", "Events forwarded to Cloud Tasks, by route and outcome (created, deduplicated).");

    internal static readonly Counter<long> Rejected = Meter.CreateCounter<long>("bridge.events.rejected", "{event}", "Events not forwarded, by route and reason.");

    internal static readonly Counter<long> HandBacks = Meter.CreateCounter<long>("bridge.servicebus.handbacks", "{message}", "Service Bus messages handed back to be tried again later, by route and reason.");

    internal static readonly Counter<long> Abandoned = Meter.CreateCounter<long>("bridge.servicebus.abandoned", "{message}", "Service Bus messages released for redelivery at once (a topic subscription with no hand-back queue), by route and reason.");

    internal static readonly Counter<long> RetriesExhausted = Meter.CreateCounter<long>("bridge.servicebus.retries_exhausted", "{message}", "Service Bus messages dead-lettered because their route's retry budget was spent, by route and last reason.");

    internal static readonly Counter<long> HttpRetryAfter = Meter.CreateCounter<long>("bridge.http.retry_after", "{request}", "HTTP events answered 503 with Retry-After, by route and reason.");

    internal static readonly Histogram<double> ForwardDuration = Meter.CreateHistogram<double>("bridge.forward.duration", "s", "Time to forward one event, CreateTask retries included.");

    public static class Tags
    {
        public const string Route = "bridge.route";
        public const string Source = "bridge.source";
        public const string Outcome = "bridge.outcome";

        /// <summary>On the callback span: the outcome the worker reported (the dashboard finds a journey's last hop by it).</summary>
        public const string OutcomeStatus = "bridge.outcome.status";

        /// <summary>On the callback metrics: which kind of callback was accepted.</summary>
        public const string CallbackKind = "bridge.callback.kind";
        public const string Reason = "bridge.reason";
        public const string MessagingSystem = "messaging.system";
        public const string MessagingOperation = "messaging.operation.type";
        public const string MessagingOperationName = "messaging.operation.name";
        public const string MessagingDestination = "messaging.destination.name";
        public const string MessagingMessageId = "messaging.message.id";
        public const string TaskName = Bridge.CloudTasks.CloudTasksTelemetry.Tags.TaskName;
        public const string ErrorType = "error.type";

        /// <summary>On a settle span's event: hand-backs including this one (a hand-back), or before this delivery (a dead-letter).</summary>
        public const string HandBackAttempt = "bridge.handback.attempt";

        /// <summary>On a hand-back event: when the copy comes back (ISO 8601), and the wait until then in seconds.</summary>
        public const string HandBackRetryAt = "bridge.handback.retry_at";

        public const string HandBackDelay = "bridge.handback.delay_seconds";

        /// <summary>On a hand-back event: the queue the copy was sent to (the message's own, or the hand-back queue).</summary>
        public const string HandBackEntity = "bridge.handback.entity";

        /// <summary>On a dead-letter event: true when the route's retry budget was spent, false for a permanent failure.</summary>
        public const string RetriesExhausted = "bridge.retries_exhausted";
    }
}
