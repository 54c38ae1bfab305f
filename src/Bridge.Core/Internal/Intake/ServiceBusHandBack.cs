using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Azure.Messaging.ServiceBus;
using Bridge.Core.Forwarding;
using Bridge.Core.Routing;

namespace Bridge.Core.Internal;

/// <summary>
/// What the hand-back of a Service Bus message carries and when it comes back. A message whose task can't be created
/// yet is scheduled again as a copy (same body and properties, plus the attempt count, the first failure's time and
/// the original MessageId, which keeps naming the task), and then the original is completed. A crash between the two
/// steps leaves both; they name the same task, so CreateTask deduplicates them, and the copy's MessageId is
/// deterministic, so a queue with duplicate detection drops the second copy itself. A message from a topic
/// subscription is handed back to the hand-back queue instead (a copy sent to the topic would reach every
/// subscription), carrying the subscription it came from so it keeps its route.
/// </summary>
internal static class ServiceBusHandBack
{
    public const string AttemptProperty = "bridge-handback-attempt";
    public const string FirstFailureProperty = "bridge-first-failure";
    public const string OriginalMessageIdProperty = "bridge-original-message-id";
    public const string LastErrorProperty = "bridge-last-error";

    /// <summary>On a copy in the hand-back queue: the entity (a topic subscription) the message first came from, which picks its route.</summary>
    public const string OriginEntityProperty = "bridge-handback-origin";

    /// <summary>Longest origin entity accepted: Service Bus' own path limit (topic 260 + subscription 50 and the separator).</summary>
    public const int MaxOriginEntityLength = 400;

    /// <summary>Service Bus' MessageId limit.</summary>
    private const int MaxMessageIdLength = 128;

    /// <summary>Reasons worth waiting for: outages and overload, and what a deployment fixes by itself (IAM bindings still propagating, a queue not created yet).</summary>
    public static bool IsRetriedWithinBudget(ForwardingException error) =>
        error.IsTransient || error.Reason == ForwardingFailureReason.QueueNotFound;

    /// <summary>Hand-backs so far (0 on the first delivery).</summary>
    public static int Attempt(IReadOnlyDictionary<string, object?> properties) =>
        properties.TryGetValue(AttemptProperty, out var value) && value switch
        {
            int i => i,
            long l when l is >= 0 and <= int.MaxValue => (int)l,
            string s when int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) => parsed,
            _ => -1,
        } is var attempt and >= 0 ? attempt : 0;

    /// <summary>When the message first failed; <paramref name="now"/> on its first failure (or an unreadable property).</summary>
    public static DateTimeOffset FirstFailure(IReadOnlyDictionary<string, object?> properties, DateTimeOffset now) =>
        properties.TryGetValue(FirstFailureProperty, out var value) && value switch
        {
            DateTimeOffset d => d,
            DateTime d => new DateTimeOffset(DateTime.SpecifyKind(d, DateTimeKind.Utc)),
            string s when DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed) => parsed,
            _ => (DateTimeOffset?)null,
        } is { } first && first <= now ? first : now;

    /// <summary>
    /// The wait before hand-back number <paramref name="attempt"/> (1-based): the initial delay doubling up to the
    /// cap, drawn from its upper half so a backlog that failed together does not come back together.
    /// </summary>
    public static TimeSpan Delay(int attempt, BridgeOptions options, Random random)
    {
        var ceiling = options.RetryInitialDelay.Ticks * Math.Pow(2, Math.Min(attempt - 1, 30));
        var capped = Math.Min(ceiling, options.RetryMaxDelay.Ticks);
        return TimeSpan.FromTicks((long)(capped * (0.5 + (random.NextDouble() / 2))));
    }

    /// <summary>The entity a message on the hand-back queue came from; null when it names none (or an unusable one).</summary>
    public static string? OriginEntity(IReadOnlyDictionary<string, object?> properties) =>
        properties.TryGetValue(OriginEntityProperty, out var value) && value is string { Length: > 0 and <= MaxOriginEntityLength } origin ? origin : null;

    /// <summary>
    /// The copy to schedule: the original's body and properties with the hand-back's own; <paramref name="originEntity"/>
    /// when it goes to another entity than the one its route takes messages from (the hand-back queue).
    /// </summary>
    public static ServiceBusMessage Copy(ServiceBusReceivedMessage original, int attempt, DateTimeOffset firstFailure, DateTimeOffset enqueueAt, ForwardingException error, string? originEntity = null)
    {
        var copy = new ServiceBusMessage(original);
        var originalId = original.ApplicationProperties.TryGetValue(OriginalMessageIdProperty, out var carried) && carried is string s && s.Length > 0
            ? s
            : original.MessageId;
        if (!string.IsNullOrEmpty(originalId))
        {
            copy.ApplicationProperties[OriginalMessageIdProperty] = originalId;
            copy.MessageId = CopyMessageId(originalId, attempt);
        }

        copy.ApplicationProperties[AttemptProperty] = attempt;
        copy.ApplicationProperties[FirstFailureProperty] = firstFailure.ToString("O", CultureInfo.InvariantCulture);
        copy.ApplicationProperties[LastErrorProperty] = error.ReasonCode;
        if (originEntity is not null)
        {
            copy.ApplicationProperties[OriginEntityProperty] = originEntity;
        }

        copy.ScheduledEnqueueTime = enqueueAt;
        return copy;
    }

    /// <summary>The same for every hand-back number <paramref name="attempt"/> of a message, within Service Bus' limit.</summary>
    internal static string CopyMessageId(string originalId, int attempt)
    {
        var suffix = string.Create(CultureInfo.InvariantCulture, $":handback:{attempt}");
        if (originalId.Length + suffix.Length <= MaxMessageIdLength)
        {
            return originalId + suffix;
        }

        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(originalId)));
        return hash + suffix;
    }
}
