using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Bridge.CloudTasks;
using Bridge.Core.Callback;
using Bridge.Core.Routing;
using Bridge.Core.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Bridge.Core.Internal;

/// <summary>A callback as the host hands it over.</summary>
internal sealed record CallbackRequest(IReadOnlyDictionary<string, string> Headers, ReadOnlyMemory<byte> Body, string? ContentType);

/// <summary>What to answer: status, the machine-readable reason of a refusal, and the outcome's id when accepted.</summary>
internal sealed record CallbackResponse(int Status, string? Reason, string? OutcomeId, TimeSpan? RetryAfter = null, string? Detail = null);

/// <summary>A verified caller's call refused: 400 (malformed) or 403 (not this caller's to make), with what is wrong.</summary>
internal sealed class CallbackRefusedException : Exception
{
    private CallbackRefusedException(int status, string reason, string message)
        : base(message) => (Status, Reason) = (status, reason);

    public int Status { get; }

    public string Reason { get; }

    public static CallbackRefusedException Invalid(string reason, string message) => new(400, reason, message);

    public static CallbackRefusedException Forbidden(CallbackRefusal refusal, string message) => new(403, refusal.ToString(), message);
}

/// <summary>
/// The return path. Verifies the caller's OIDC token before anything else, turns the call into a task outcome
/// (a Cloud Tasks dispatch to the bridge, or a target's report), hands it to the sinks, and answers 2xx only once
/// they have it; 503 otherwise, so Cloud Tasks retries.
/// </summary>
internal sealed partial class CallbackReceiver
{
    private static readonly Counter<long> Accepted = BridgeDiagnostics.Meter.CreateCounter<long>("bridge.callbacks.accepted", "{call}", "Callbacks verified and handed to the outcome sinks, by kind.");
    private static readonly Counter<long> Rejected = BridgeDiagnostics.Meter.CreateCounter<long>("bridge.callbacks.rejected", "{call}", "Callbacks refused, by reason.");
    private static readonly Histogram<double> Duration = BridgeDiagnostics.Meter.CreateHistogram<double>("bridge.callback.duration", "s", "Time to verify and settle one callback.");

    /// <summary>
    /// The dispatch's X-CloudTasks-* headers the span and the outcome both use, each looked up once. On the span they
    /// are tagged under the names every Bridge span uses; the task's name and queue are tagged once resolved to full
    /// names (the headers carry short ids).
    /// </summary>
    private readonly struct TaskHeaders(IReadOnlyDictionary<string, string> headers)
    {
        public string? RetryCount { get; } = headers.GetValueOrDefault("X-CloudTasks-TaskRetryCount");

        public string? ExecutionCount { get; } = headers.GetValueOrDefault("X-CloudTasks-TaskExecutionCount");

        public string? Eta { get; } = headers.GetValueOrDefault("X-CloudTasks-TaskETA");

        public string? PreviousResponse { get; } = headers.GetValueOrDefault("X-CloudTasks-TaskPreviousResponse");

        public string? RetryReason { get; } = headers.GetValueOrDefault("X-CloudTasks-TaskRetryReason");

        public void Tag(Activity activity)
        {
            Tag(activity, CloudTasksTelemetry.Tags.RetryCount, RetryCount);
            Tag(activity, CloudTasksTelemetry.Tags.ExecutionCount, ExecutionCount);
            Tag(activity, CloudTasksTelemetry.Tags.Eta, Eta);
            Tag(activity, CloudTasksTelemetry.Tags.PreviousResponse, PreviousResponse);
            Tag(activity, CloudTasksTelemetry.Tags.RetryReason, RetryReason);
        }

        private static void Tag(Activity activity, string tag, string? value)
        {
            if (value is not null)
            {
                activity.AddTag(tag, value.Length <= 64 ? value : value[..64]);
            }
        }
    }

    private readonly OidcTokenVerifier _verifier;
    private readonly IOutcomeSink _sink;
    private readonly CloudTasksClient? _client;
    private readonly CallbackOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<CallbackReceiver> _logger;
    private readonly CallbackAuthorization _authorization;
    private readonly int _maxInlinePayload;
    private readonly BlobPayloadStore? _payloads;
    private readonly ConcurrentDictionary<string, (int MaxAttempts, TimeSpan MaxDuration, DateTimeOffset Until)> _retryConfigs = new(StringComparer.Ordinal);

    public CallbackReceiver(OidcTokenVerifier verifier, IOutcomeSink sink, IOptions<CallbackOptions> options, TimeProvider time, ILogger<CallbackReceiver> logger, RouteTable? routes = null, CloudTasksClient? client = null, IOptions<OutcomeOptions>? outcomes = null, BlobPayloadStore? payloads = null)
    {
        _payloads = payloads;
        _maxInlinePayload = outcomes?.Value.MaxInlinePayloadBytes ?? OutcomeOptions.DefaultMaxInlinePayloadBytes;
        _verifier = verifier;
        _sink = sink;
        _client = client;
        _options = options.Value.Clone();
        _authorization = new CallbackAuthorization(routes ?? new RouteTable(new BridgeOptions()), _options);
        _time = time;
        _logger = logger;
    }

    /// <summary>Where payloads over the inline limit go; null when none is configured.</summary>
    internal BlobPayloadStore? PayloadStore => _payloads;

    public Task<CallbackResponse> HandleAsync(CallbackRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return SettleAsync(request.Headers, request.ContentType, request.Body, null, cancellationToken);
    }

    /// <summary>
    /// Settles a callback whose body is read by <paramref name="readBody"/> (null: over the limit) only once the
    /// token is verified, so an unauthenticated caller can't make the receiver buffer a body.
    /// </summary>
    public Task<CallbackResponse> HandleAsync(IReadOnlyDictionary<string, string> headers, string? contentType, Func<CancellationToken, Task<ReadOnlyMemory<byte>?>> readBody, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(readBody);
        return SettleAsync(headers, contentType, null, readBody, cancellationToken);
    }

    /// <summary>The body is <paramref name="body"/> when the host has it already, else what <paramref name="readBody"/> reads.</summary>
    private async Task<CallbackResponse> SettleAsync(IReadOnlyDictionary<string, string> headers, string? contentType, ReadOnlyMemory<byte>? body, Func<CancellationToken, Task<ReadOnlyMemory<byte>?>>? readBody, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(headers);
        var started = _time.GetTimestamp();
        var taskName = headers.GetValueOrDefault("X-CloudTasks-TaskName");
        var kind = taskName is null ? "report" : "dispatch";

        // Continue the forwarded event's trace: under the host's activity when a listener records it (the worker's
        // invocation, an instrumented request), else from the task's traceparent.
        // (Without a traceparent there is nothing to continue, and no tracestate to read.)
        var parent = headers.TryGetValue("traceparent", out var traceParent) ? TraceParents.Choose(traceParent, headers.GetValueOrDefault("tracestate")) : default;
        // Constant span names: no per-call string.
        using var activity = BridgeDiagnostics.ActivitySource.StartActivity(taskName is null ? "callback report" : "callback dispatch", ActivityKind.Internal, parent);
        try
        {
            var verification = await _verifier.VerifyValueAsync(headers.GetValueOrDefault("Authorization"), cancellationToken).ConfigureAwait(false);
            if (!verification.IsValid)
            {
                return Refuse(activity, verification.Status, verification.Rejection!.Value.ToString(), verification.Status == 503 ? TimeSpan.FromSeconds(10) : null);
            }

            // Only a verified caller's headers reach the span.
            var taskHeaders = new TaskHeaders(headers);
            if (activity is { IsAllDataRequested: true })
            {
                taskHeaders.Tag(activity);
            }

            body ??= await readBody!(cancellationToken).ConfigureAwait(false);
            if (body is not { } payload)
            {
                return Refuse(activity, 413, "PayloadTooLarge", null, $"The body is over the callback's limit of {_options.MaxBodyBytes} bytes.");
            }

            var request = new CallbackRequest(headers, payload, contentType);
            TaskOutcome outcome;
            try
            {
                outcome = taskName is null ? FromReport(request, verification.Email!) : FromDispatch(request, taskName, taskHeaders, verification.Email!, verification.Audiences ?? []);
            }
            catch (CallbackRefusedException ex)
            {
                LogBadCall(ex.Reason, ex.Message);
                return Refuse(activity, ex.Status, ex.Reason, null, ex.Message);
            }

            if (outcome is { Status: OutcomeStatus.Delivered, PayloadSha256: { } sha256 } && _payloads is not null)
            {
                if (await StorePayloadAsync(outcome, payload, sha256, headers, cancellationToken).ConfigureAwait(false) is not { } stored)
                {
                    return Refuse(activity, 503, "PayloadStoreUnavailable", TimeSpan.FromSeconds(10));
                }

                outcome = stored;
            }

            try
            {
                await _sink.PublishAsync(outcome, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                LogSinkFailed(outcome.TaskName, ex);
                if (taskName is not null && await IsLastAttemptAsync(outcome, Due(headers), cancellationToken).ConfigureAwait(false))
                {
                    await ReportFinalFailureAsync(outcome, ex, cancellationToken).ConfigureAwait(false);
                }

                return Refuse(activity, 503, "SinkUnavailable", TimeSpan.FromSeconds(10));
            }

            Accepted.Add(1, new KeyValuePair<string, object?>(BridgeDiagnostics.Tags.CallbackKind, kind));
            if (activity is { IsAllDataRequested: true })
            {
                activity.AddTag(CloudTasksTelemetry.Tags.TaskName, outcome.TaskName);
                activity.AddTag(BridgeDiagnostics.Tags.MessagingDestination, outcome.Queue);
                activity.AddTag("bridge.outcome.id", outcome.Id);
                activity.AddTag(BridgeDiagnostics.Tags.OutcomeStatus, outcome.Type);
            }

            return new CallbackResponse(200, null, outcome.Id);
        }
        finally
        {
            Duration.Record(_time.GetElapsedTime(started).TotalSeconds, new KeyValuePair<string, object?>(BridgeDiagnostics.Tags.CallbackKind, kind));
        }
    }

    private CallbackResponse Refuse(Activity? activity, int status, string reason, TimeSpan? retryAfter, string? detail = null)
    {
        Rejected.Add(1, new KeyValuePair<string, object?>(BridgeDiagnostics.Tags.Reason, reason));
        activity?.SetStatus(ActivityStatusCode.Error, reason);
        activity?.SetTag(BridgeDiagnostics.Tags.ErrorType, reason);
        LogRefused(status, reason);
        return new CallbackResponse(status, reason, null, retryAfter, detail);
    }

    private TaskOutcome FromDispatch(CallbackRequest request, string taskId, in TaskHeaders taskHeaders, string caller, IReadOnlyList<string> audiences)
    {
        var headers = request.Headers;
        if (taskId.Length is 0 or > 500 || taskId.AsSpan().ContainsAnyExcept(TaskIdChars))
        {
            throw CallbackRefusedException.Invalid("InvalidTaskName", $"X-CloudTasks-TaskName '{Shorten(taskId)}' is not a task id: 1 to 500 letters, digits, '-' and '_'.");
        }

        if (headers.GetValueOrDefault("X-CloudTasks-QueueName") is not { Length: > 0 } queueId)
        {
            throw CallbackRefusedException.Invalid("InvalidDispatch", "A dispatch (X-CloudTasks-TaskName) needs X-CloudTasks-QueueName.");
        }

        if (_authorization.AuthorizeDispatch(caller, audiences, queueId, headers.GetValueOrDefault(EventForwarder.RouteHeader), out var route) is { } refusal)
        {
            throw CallbackRefusedException.Forbidden(refusal, refusal switch
            {
                CallbackRefusal.QueueNotRoutedHere => $"No route whose tasks target this callback uses queue '{Shorten(queueId)}'.",
                CallbackRefusal.NotTheRouteAudience => $"Dispatches of queue '{Shorten(queueId)}' must carry their route's audience (its Audience, or its TargetUrl); the token was minted for another.",
                _ => $"Dispatches of queue '{Shorten(queueId)}' are accepted only from the account its route's tasks are signed as, not from {caller}.",
            });
        }

        _ = Due(headers); // a bad stamp is a 400 now, not a surprise on the last attempt
        var inline = request.Body.Length <= _maxInlinePayload;
        return new TaskOutcome
        {
            Status = OutcomeStatus.Delivered,
            TaskName = string.Concat(route!.QueueName, "/tasks/", taskId), // the task's full name, as TaskName formats it
            TaskInstance = Instance(headers.GetValueOrDefault(EventForwarder.TaskInstanceHeader), EventForwarder.TaskInstanceHeader),
            Queue = route.QueueName,
            Route = route.Route.Name,
            IdentityKind = headers.GetValueOrDefault(EventForwarder.IdentityHeader),
            CorrelationId = headers.GetValueOrDefault(EventForwarder.CorrelationHeader),
            RetryCount = Int(taskHeaders.RetryCount),
            ExecutionCount = Int(taskHeaders.ExecutionCount),
            PreviousResponse = Int(taskHeaders.PreviousResponse),
            Eta = taskHeaders.Eta is { } eta ? UnixSeconds(eta, "X-CloudTasks-TaskETA", "InvalidTaskEta") : null,
            ReportedBy = caller,
            ReceivedAt = _time.GetUtcNow(),
            Payload = inline ? request.Body : default,
            PayloadContentType = request.ContentType,
            PayloadSize = request.Body.Length,
            PayloadSha256 = inline ? null : Convert.ToHexStringLower(SHA256.HashData(request.Body.Span)),
            PayloadNote = inline || _payloads is not null ? null : $"The payload ({request.Body.Length} bytes) is over {OutcomeOptions.SectionName}:MaxInlinePayloadBytes ({_maxInlinePayload}) and no payload store is configured: the outcome carries its size and SHA-256 only.",
        };
    }

    /// <summary>
    /// Stores a payload too large to carry and returns the outcome that points at it. When the store fails: null (the
    /// callback answers 503, Cloud Tasks retries, nothing is lost), except on the task's last attempt, where the outcome
    /// is published with the payload's size and SHA-256 and a note saying the store failed, since no retry would follow.
    /// </summary>
    private async Task<TaskOutcome?> StorePayloadAsync(TaskOutcome outcome, ReadOnlyMemory<byte> payload, string sha256, IReadOnlyDictionary<string, string> headers, CancellationToken cancellationToken)
    {
        try
        {
            var uri = await _payloads!.StoreAsync(outcome.Id, payload, sha256, outcome.PayloadContentType, cancellationToken).ConfigureAwait(false);
            return outcome with
            {
                PayloadUri = uri,
                PayloadNote = $"The payload ({payload.Length} bytes) is over {OutcomeOptions.SectionName}:MaxInlinePayloadBytes ({_maxInlinePayload}): it is stored at payloadUri, with its SHA-256 in payloadSha256.",
            };
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogPayloadStoreFailed(outcome.TaskName, ex);
            if (await IsLastAttemptAsync(outcome, Due(headers), cancellationToken).ConfigureAwait(false))
            {
                return outcome with
                {
                    PayloadNote = $"The payload ({payload.Length} bytes) is over {OutcomeOptions.SectionName}:MaxInlinePayloadBytes ({_maxInlinePayload}) and the payload store failed on the task's last attempt: the outcome carries its size and SHA-256 only.",
                };
            }

            return null;
        }
    }

    /// <summary>Seconds since the epoch, with a fraction (X-CloudTasks-TaskETA); anything else is a bad call, not a 500.</summary>
    private static DateTimeOffset UnixSeconds(string text, string header, string reason)
    {
        if (TryReadUnixTicks(text, out var ticks))
        {
            return DateTimeOffset.UnixEpoch.AddTicks(ticks);
        }

        if (decimal.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var seconds) && seconds <= MaxEtaSeconds)
        {
            return DateTimeOffset.UnixEpoch.AddTicks((long)(seconds * TimeSpan.TicksPerSecond));
        }

        throw CallbackRefusedException.Invalid(reason, $"{header} '{Shorten(text)}' is not a time: seconds since 1970 up to {MaxEtaSeconds}.");
    }

    /// <summary>
    /// The common stamp (up to 11 digits, so the ticks can't overflow, optionally a point and up to 15 more) read without <c>decimal</c>, with the
    /// same result: ticks truncated after the seventh decimal. Anything else (other shapes, at or past the limit) is
    /// left to the decimal path, which decides.
    /// </summary>
    internal static bool TryReadUnixTicks(ReadOnlySpan<char> text, out long ticks)
    {
        ticks = 0;
        var point = text.IndexOf('.');
        var whole = point < 0 ? text : text[..point];
        var fraction = point < 0 ? default : text[(point + 1)..];
        if (whole.Length is 0 or > 11 || fraction.Length > 15 || whole.ContainsAnyExceptInRange('0', '9') || fraction.ContainsAnyExceptInRange('0', '9'))
        {
            return false;
        }

        long seconds = 0;
        foreach (var digit in whole)
        {
            seconds = (seconds * 10) + (digit - '0');
        }

        long fractionTicks = 0;
        for (var i = 0; i < 7; i++)
        {
            fractionTicks = (fractionTicks * 10) + (i < fraction.Length ? fraction[i] - '0' : 0);
        }

        ticks = (seconds * TimeSpan.TicksPerSecond) + fractionTicks;
        return ticks < MaxEtaTicks;
    }

    private static readonly long MaxEtaTicks = (DateTimeOffset.MaxValue - DateTimeOffset.UnixEpoch).Ticks - TimeSpan.TicksPerSecond;

    private static readonly SearchValues<char> AsciiLettersAndDigits = SearchValues.Create("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

    private static readonly SearchValues<char> TaskIdChars = SearchValues.Create("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_");

    private static readonly decimal MaxEtaSeconds = (decimal)(DateTimeOffset.MaxValue - DateTimeOffset.UnixEpoch).Ticks / TimeSpan.TicksPerSecond - 1;

    private static string? Instance(string? value, string source) => value switch
    {
        null or "" => null,
        { Length: <= 64 } when !value.AsSpan().ContainsAnyExcept(AsciiLettersAndDigits) => value,
        _ => throw CallbackRefusedException.Invalid("InvalidTaskInstance", $"{source} must be at most 64 ASCII letters and digits."),
    };

    /// <summary>
    /// A target's report: <c>{"taskName": "...", "status": "succeeded"|"failed", "detail": "...", "taskInstance": "..."}</c>
    /// (<c>taskInstance</c>: the task's X-Bridge-Task-Instance header, so a reused task name gets its own outcome id).
    /// </summary>
    private TaskOutcome FromReport(CallbackRequest request, string caller)
    {
        string? taskName, status, detail, instance;
        try
        {
            using var json = JsonDocument.Parse(request.Body);
            var root = json.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw CallbackRefusedException.Invalid("InvalidReport", "The outcome report must be a JSON object.");
            }

            taskName = String(root, "taskName");
            status = String(root, "status");
            detail = String(root, "detail");
            instance = String(root, "taskInstance");
        }
        catch (JsonException ex)
        {
            throw CallbackRefusedException.Invalid("InvalidReport", $"The outcome report is not JSON: {ex.Message}");
        }
        catch (InvalidOperationException)
        {
            // System.Text.Json refuses to turn a lone UTF-16 surrogate escape (\ud800) into a string.
            throw CallbackRefusedException.Invalid("InvalidReport", "The outcome report holds a string that is not valid UTF-16 (a lone surrogate escape).");
        }

        if (string.IsNullOrEmpty(taskName) || !TaskName.TryParse(taskName, out var parsed))
        {
            throw CallbackRefusedException.Invalid("InvalidReport", "The outcome report needs 'taskName', a full task name (projects/…/tasks/…).");
        }

        var outcomeStatus = status switch
        {
            "succeeded" => OutcomeStatus.Succeeded,
            "failed" => OutcomeStatus.Failed,
            _ => throw CallbackRefusedException.Invalid("InvalidReport", "The outcome report needs 'status': 'succeeded' or 'failed'."),
        };

        if (_authorization.AuthorizeReport(caller, parsed, out var route) is { } refusal)
        {
            throw CallbackRefusedException.Forbidden(refusal, refusal == CallbackRefusal.TaskOfNoRoute
                ? $"Task {taskName} is in no route's queue."
                : $"{caller} is not in ReportingServiceAccounts of the route of {taskName}.");
        }

        return new TaskOutcome
        {
            Status = outcomeStatus,
            TaskName = taskName,
            TaskInstance = Instance(instance, "'taskInstance'"),
            Queue = parsed.Queue.ToString(),
            Route = route!.Name,
            Detail = detail is { Length: > MaxDetailLength } ? detail[..(char.IsHighSurrogate(detail[MaxDetailLength - 1]) ? MaxDetailLength - 1 : MaxDetailLength)] : detail,
            CorrelationId = request.Headers.GetValueOrDefault(EventForwarder.CorrelationHeader),
            ReportedBy = caller,
            ReceivedAt = _time.GetUtcNow(),
        };
    }

    private const int MaxDetailLength = 4096;

    private static string? String(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static string Shorten(string value) => value.Length <= 64 ? value : string.Concat(value.AsSpan(0, 61), "...");

    /// <summary>
    /// Whether Cloud Tasks will give up after this attempt, from the queue's retry config (cached): it stops once both
    /// max_attempts (-1: none) and max_retry_duration since the first attempt (zero: none) are reached. The first
    /// attempt's time is the task's due time as the bridge stamped it; a task without the stamp is judged by attempts.
    /// </summary>
    private async Task<bool> IsLastAttemptAsync(TaskOutcome outcome, DateTimeOffset? due, CancellationToken cancellationToken)
    {
        if (outcome.RetryCount is not { } retryCount)
        {
            return false;
        }

        var maxAttempts = _options.DefaultMaxAttempts;
        var maxDuration = TimeSpan.Zero;
        var now = _time.GetUtcNow();
        if (_client is not null && outcome.Queue is not null && QueueName.TryParse(outcome.Queue, out var queue))
        {
            if (_retryConfigs.TryGetValue(outcome.Queue, out var cached) && cached.Until > now)
            {
                (maxAttempts, maxDuration) = (cached.MaxAttempts, cached.MaxDuration);
            }
            else
            {
                try
                {
                    var config = await _client.GetQueueAsync(queue, cancellationToken).ConfigureAwait(false);
                    maxAttempts = config.RetryConfig?.MaxAttempts ?? maxAttempts;
                    maxDuration = config.RetryConfig?.MaxRetryDuration?.ToTimeSpan() ?? TimeSpan.Zero;
                    _retryConfigs[outcome.Queue] = (maxAttempts, maxDuration, now + TimeSpan.FromMinutes(5));
                }
                catch (CloudTasksException)
                {
                    // Fall back to the default; reporting failure early is better than never.
                }
            }
        }

        var durationReached = maxDuration <= TimeSpan.Zero || due is not { } first || now - first >= maxDuration;
        if (maxAttempts == -1)
        {
            return maxDuration > TimeSpan.Zero && due is not null && durationReached;
        }

        return retryCount + 1 >= maxAttempts && durationReached;
    }

    /// <summary>When the task was first due (the bridge's X-Bridge-Task-Due stamp), if stamped.</summary>
    private static DateTimeOffset? Due(IReadOnlyDictionary<string, string> headers) =>
        headers.TryGetValue(EventForwarder.TaskDueHeader, out var text) ? UnixSeconds(text, EventForwarder.TaskDueHeader, "InvalidTaskDue") : null;

    private async Task ReportFinalFailureAsync(TaskOutcome delivered, Exception cause, CancellationToken cancellationToken)
    {
        var failed = delivered with { Status = OutcomeStatus.Failed, Detail = $"The bridge could not hand on the task on its last attempt: {cause.Message}", Payload = default, PayloadSize = null, PayloadSha256 = null, PayloadUri = null, PayloadNote = null };
        try
        {
            await _sink.PublishAsync(failed, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogFinalFailureLost(failed.TaskName, failed.Id, ex);
        }
    }

    private static int? Int(string? value) =>
        value is not null && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;

    [LoggerMessage(EventId = 300, Level = LogLevel.Warning, Message = "Refused a callback with {Status}: {Reason}")]
    private partial void LogRefused(int status, string reason);

    [LoggerMessage(EventId = 301, Level = LogLevel.Warning, Message = "Refused a callback ({Reason}): {Problem}")]
    private partial void LogBadCall(string reason, string problem);

    [LoggerMessage(EventId = 302, Level = LogLevel.Error, Message = "The outcome sink failed for {TaskName}; answering 503 so Cloud Tasks retries")]
    private partial void LogSinkFailed(string taskName, Exception exception);

    [LoggerMessage(EventId = 320, Level = LogLevel.Error, Message = "The payload store failed for {TaskName}; answering 503 so Cloud Tasks retries, unless this was the last attempt")]
    private partial void LogPayloadStoreFailed(string taskName, Exception exception);

    [LoggerMessage(EventId = 303, Level = LogLevel.Critical, Message = "The final failure of {TaskName} (outcome {OutcomeId}) could not be reported to any sink")]
    private partial void LogFinalFailureLost(string taskName, string outcomeId, Exception exception);
}
