using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
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
internal sealed record CallbackResponse(int Status, string? Reason, string? OutcomeId, TimeSpan? RetryAfter = null);

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

    // The dispatch's X-CloudTasks-* headers as span attributes, under the names every Bridge span uses; the task's
    // name and queue are tagged once resolved to full names (the headers carry short ids).
    private static readonly (string Header, string Tag)[] HeaderTags =
    [
        ("X-CloudTasks-TaskRetryCount", CloudTasksTelemetry.Tags.RetryCount),
        ("X-CloudTasks-TaskExecutionCount", CloudTasksTelemetry.Tags.ExecutionCount),
        ("X-CloudTasks-TaskETA", CloudTasksTelemetry.Tags.Eta),
        ("X-CloudTasks-TaskPreviousResponse", CloudTasksTelemetry.Tags.PreviousResponse),
        ("X-CloudTasks-TaskRetryReason", CloudTasksTelemetry.Tags.RetryReason),
    ];

    private readonly OidcTokenVerifier _verifier;
    private readonly IOutcomeSink _sink;
    private readonly RouteTable? _routes;
    private readonly CloudTasksClient? _client;
    private readonly CallbackOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<CallbackReceiver> _logger;
    private readonly ConcurrentDictionary<string, (int MaxAttempts, DateTimeOffset Until)> _maxAttempts = new(StringComparer.Ordinal);

    public CallbackReceiver(OidcTokenVerifier verifier, IOutcomeSink sink, IOptions<CallbackOptions> options, TimeProvider time, ILogger<CallbackReceiver> logger, RouteTable? routes = null, CloudTasksClient? client = null)
    {
        _verifier = verifier;
        _sink = sink;
        _routes = routes;
        _client = client;
        _options = options.Value.Clone();
        _time = time;
        _logger = logger;
    }

    public async Task<CallbackResponse> HandleAsync(CallbackRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var started = _time.GetTimestamp();
        var headers = request.Headers;
        var taskName = headers.GetValueOrDefault("X-CloudTasks-TaskName");
        var kind = taskName is null ? "report" : "dispatch";

        // Continue the forwarded event's trace: the host's request activity already does when it read traceparent.
        var parent = Activity.Current is null && ActivityContext.TryParse(headers.GetValueOrDefault("traceparent"), headers.GetValueOrDefault("tracestate"), out var carried) ? carried : default;
        // Constant span names and AddTag (each tag is set once): no per-call string or tag-list search.
        using var activity = BridgeDiagnostics.ActivitySource.StartActivity(taskName is null ? "callback report" : "callback dispatch", ActivityKind.Internal, parent);
        if (activity is { IsAllDataRequested: true })
        {
            foreach (var (header, tag) in HeaderTags)
            {
                if (headers.TryGetValue(header, out var value))
                {
                    activity.AddTag(tag, value);
                }
            }
        }

        try
        {
            var verification = await _verifier.VerifyAsync(headers.GetValueOrDefault("Authorization"), cancellationToken).ConfigureAwait(false);
            if (!verification.IsValid)
            {
                return Refuse(activity, verification.Status, verification.Rejection!.Value.ToString(), verification.Status == 503 ? TimeSpan.FromSeconds(10) : null);
            }

            TaskOutcome outcome;
            try
            {
                outcome = taskName is null ? FromReport(request, verification.Email!) : FromDispatch(request, taskName, verification.Email!);
            }
            catch (FormatException ex)
            {
                LogBadReport(ex.Message);
                return Refuse(activity, 400, "InvalidReport", null);
            }

            try
            {
                await _sink.PublishAsync(outcome, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                LogSinkFailed(outcome.TaskName, ex);
                if (taskName is not null && await IsLastAttemptAsync(outcome, cancellationToken).ConfigureAwait(false))
                {
                    await ReportFinalFailureAsync(outcome, ex, cancellationToken).ConfigureAwait(false);
                }

                return Refuse(activity, 503, "SinkUnavailable", TimeSpan.FromSeconds(10));
            }

            Accepted.Add(1, new KeyValuePair<string, object?>("bridge.callback.kind", kind));
            if (activity is { IsAllDataRequested: true })
            {
                activity.AddTag(CloudTasksTelemetry.Tags.TaskName, outcome.TaskName);
                activity.AddTag(BridgeDiagnostics.Tags.MessagingDestination, outcome.Queue);
                activity.AddTag("bridge.outcome.id", outcome.Id);
                activity.AddTag("bridge.outcome.status", outcome.Type);
            }

            return new CallbackResponse(200, null, outcome.Id);
        }
        finally
        {
            Duration.Record(_time.GetElapsedTime(started).TotalSeconds, new KeyValuePair<string, object?>("bridge.callback.kind", kind));
        }
    }

    private CallbackResponse Refuse(Activity? activity, int status, string reason, TimeSpan? retryAfter)
    {
        Rejected.Add(1, new KeyValuePair<string, object?>(BridgeDiagnostics.Tags.Reason, reason));
        activity?.SetStatus(ActivityStatusCode.Error, reason);
        activity?.SetTag(BridgeDiagnostics.Tags.ErrorType, reason);
        LogRefused(status, reason);
        return new CallbackResponse(status, reason, null, retryAfter);
    }

    private TaskOutcome FromDispatch(CallbackRequest request, string taskId, string caller)
    {
        var headers = request.Headers;
        var routeName = headers.GetValueOrDefault(EventForwarder.RouteHeader);
        Route? route = null;
        _ = routeName is not null && _routes is not null && _routes.TryFind(routeName, out route);
        var queueId = headers.GetValueOrDefault("X-CloudTasks-QueueName");
        return new TaskOutcome
        {
            Status = OutcomeStatus.Delivered,
            TaskName = route is not null ? route.Queue.Task(taskId).ToString() : taskId,
            Queue = route?.Queue.ToString() ?? queueId,
            Route = route?.Name ?? routeName,
            IdentityKind = headers.GetValueOrDefault(EventForwarder.IdentityHeader),
            CorrelationId = headers.GetValueOrDefault(EventForwarder.CorrelationHeader),
            RetryCount = Int(headers, "X-CloudTasks-TaskRetryCount"),
            ExecutionCount = Int(headers, "X-CloudTasks-TaskExecutionCount"),
            PreviousResponse = Int(headers, "X-CloudTasks-TaskPreviousResponse"),
            Eta = headers.TryGetValue("X-CloudTasks-TaskETA", out var eta) && decimal.TryParse(eta, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds)
                ? DateTimeOffset.UnixEpoch.AddTicks((long)(seconds * TimeSpan.TicksPerSecond))
                : null,
            ReportedBy = caller,
            ReceivedAt = _time.GetUtcNow(),
            Payload = request.Body,
            PayloadContentType = request.ContentType,
        };
    }

    /// <summary>A target's report: <c>{"taskName": "...", "status": "succeeded"|"failed", "detail": "..."}</c>.</summary>
    private TaskOutcome FromReport(CallbackRequest request, string caller)
    {
        string? taskName, status, detail;
        try
        {
            using var json = JsonDocument.Parse(request.Body);
            var root = json.RootElement;
            taskName = root.TryGetProperty("taskName", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            status = root.TryGetProperty("status", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
            detail = root.TryGetProperty("detail", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
        }
        catch (JsonException ex)
        {
            throw new FormatException($"The outcome report is not JSON: {ex.Message}", ex);
        }

        if (string.IsNullOrEmpty(taskName) || !TaskName.TryParse(taskName, out var parsed))
        {
            throw new FormatException("The outcome report needs 'taskName', a full task name (projects/…/tasks/…).");
        }

        var outcomeStatus = status switch
        {
            "succeeded" => OutcomeStatus.Succeeded,
            "failed" => OutcomeStatus.Failed,
            _ => throw new FormatException("The outcome report needs 'status': 'succeeded' or 'failed'."),
        };
        return new TaskOutcome
        {
            Status = outcomeStatus,
            TaskName = taskName,
            Queue = parsed.Queue.ToString(),
            Route = _routes?.All.FirstOrDefault(r => r.Queue == parsed.Queue)?.Name,
            Detail = detail is { Length: > 4096 } ? detail[..4096] : detail,
            CorrelationId = request.Headers.GetValueOrDefault(EventForwarder.CorrelationHeader),
            ReportedBy = caller,
            ReceivedAt = _time.GetUtcNow(),
        };
    }

    /// <summary>Whether Cloud Tasks will give up after this attempt, from the queue's retry config (cached).</summary>
    private async Task<bool> IsLastAttemptAsync(TaskOutcome outcome, CancellationToken cancellationToken)
    {
        if (outcome.RetryCount is not { } retryCount)
        {
            return false;
        }

        var maxAttempts = _options.DefaultMaxAttempts;
        if (_client is not null && outcome.Queue is not null && QueueName.TryParse(outcome.Queue, out var queue))
        {
            var now = _time.GetUtcNow();
            if (_maxAttempts.TryGetValue(outcome.Queue, out var cached) && cached.Until > now)
            {
                maxAttempts = cached.MaxAttempts;
            }
            else
            {
                try
                {
                    var config = await _client.GetQueueAsync(queue, cancellationToken).ConfigureAwait(false);
                    maxAttempts = config.RetryConfig?.MaxAttempts ?? maxAttempts;
                    _maxAttempts[outcome.Queue] = (maxAttempts, now + TimeSpan.FromMinutes(5));
                }
                catch (CloudTasksException)
                {
                    // Fall back to the default; reporting failure early is better than never.
                }
            }
        }

        return maxAttempts != -1 && retryCount + 1 >= maxAttempts;
    }

    private async Task ReportFinalFailureAsync(TaskOutcome delivered, Exception cause, CancellationToken cancellationToken)
    {
        var failed = delivered with { Status = OutcomeStatus.Failed, Detail = $"The bridge could not hand on the task on its last attempt: {cause.Message}", Payload = default };
        try
        {
            await _sink.PublishAsync(failed, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogFinalFailureLost(failed.TaskName, failed.Id, ex);
        }
    }

    private static int? Int(IReadOnlyDictionary<string, string> headers, string name) =>
        headers.TryGetValue(name, out var value) && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;

    [LoggerMessage(EventId = 300, Level = LogLevel.Warning, Message = "Refused a callback with {Status}: {Reason}")]
    private partial void LogRefused(int status, string reason);

    [LoggerMessage(EventId = 301, Level = LogLevel.Warning, Message = "Refused an outcome report: {Problem}")]
    private partial void LogBadReport(string problem);

    [LoggerMessage(EventId = 302, Level = LogLevel.Error, Message = "The outcome sink failed for {TaskName}; answering 503 so Cloud Tasks retries")]
    private partial void LogSinkFailed(string taskName, Exception exception);

    [LoggerMessage(EventId = 303, Level = LogLevel.Critical, Message = "The final failure of {TaskName} (outcome {OutcomeId}) could not be reported to any sink")]
    private partial void LogFinalFailureLost(string taskName, string outcomeId, Exception exception);
}
