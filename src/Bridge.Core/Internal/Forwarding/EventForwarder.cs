using System.Diagnostics;
using System.Globalization;
using Bridge.CloudTasks;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Core.Forwarding;
using Bridge.Core.Routing;
using Bridge.Core.Telemetry;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using HttpMethod = Bridge.CloudTasks.V2Beta3.HttpMethod;

namespace Bridge.Core.Internal;

/// <summary>
/// The forwarding pipeline: route, task name from identity, schedule, payload limits, headers (trace context
/// always), then CreateTask. ALREADY_EXISTS is a deduplicated success; transient failures are retried here with
/// backoff (safe: named tasks are idempotent) and then surface as transient.
/// </summary>
internal sealed partial class EventForwarder : IEventForwarder
{
    public const string CorrelationHeader = "X-Bridge-Correlation-Id";
    public const string RouteHeader = "X-Bridge-Route";
    public const string IdentityHeader = "X-Bridge-Event-Identity";

    /// <summary>A random stamp per created task: outcome ids tell apart two tasks that reuse one name.</summary>
    public const string TaskInstanceHeader = "X-Bridge-Task-Instance";

    /// <summary>When the task is first due (seconds since the epoch): the callback's measure of max_retry_duration.</summary>
    public const string TaskDueHeader = "X-Bridge-Task-Due";

    private readonly CloudTasksClient _client;
    private readonly RouteTable _routes;
    private readonly BridgeOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<EventForwarder> _logger;
    private readonly CallSettings _namedTaskCall;

    public EventForwarder(CloudTasksClient client, RouteTable routes, IOptions<BridgeOptions> options, TimeProvider time, ILogger<EventForwarder> logger)
    {
        _client = client;
        _routes = routes;
        _options = options.Value.Clone();
        _time = time;
        _logger = logger;
        _namedTaskCall = new CallSettings
        {
            Retry = RetrySettings.IdempotentDefault with
            {
                RetryableStatusCodes = new HashSet<StatusCode> { StatusCode.Unavailable, StatusCode.DeadlineExceeded, StatusCode.ResourceExhausted, StatusCode.Internal },
            },
        };
    }

    public async Task<ForwardResult> ForwardAsync(InboundEvent inbound, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inbound);
        var started = _time.GetTimestamp();
        // Continue the host's activity (Functions invocation, instrumented ASP.NET request) when a listener records it;
        // failing that, the event's own trace context.
        var parent = TraceParents.Choose(inbound.TraceParent, null);
        using var activity = BridgeDiagnostics.ActivitySource.StartActivity($"forward {inbound.Route}", ActivityKind.Producer, parent);
        activity?.SetTag(BridgeDiagnostics.Tags.Route, inbound.Route);
        activity?.SetTag(BridgeDiagnostics.Tags.Source, inbound.Source);
        activity?.SetTag(BridgeDiagnostics.Tags.MessagingSystem, "gcp_cloud_tasks");
        activity?.SetTag(BridgeDiagnostics.Tags.MessagingOperation, "send");
        try
        {
            var result = await ForwardCoreAsync(inbound, activity, cancellationToken).ConfigureAwait(false);
            var outcome = result.Outcome == ForwardOutcome.Created ? "created" : "deduplicated";
            activity?.SetTag(BridgeDiagnostics.Tags.Outcome, outcome);
            BridgeDiagnostics.Forwarded.Add(1, new(BridgeDiagnostics.Tags.Route, inbound.Route), new(BridgeDiagnostics.Tags.Outcome, outcome));
            LogForwarded(inbound.Route, result.TaskName, outcome);
            return result;
        }
        catch (ForwardingException ex)
        {
            activity?.SetTag(BridgeDiagnostics.Tags.Outcome, "rejected");
            activity?.SetTag(BridgeDiagnostics.Tags.Reason, ex.ReasonCode);
            activity?.SetTag(BridgeDiagnostics.Tags.ErrorType, ex.ReasonCode);
            activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
            BridgeDiagnostics.Rejected.Add(1, new(BridgeDiagnostics.Tags.Route, inbound.Route), new(BridgeDiagnostics.Tags.Reason, ex.ReasonCode));
            LogRejected(inbound.Route, ex.ReasonCode, ex.IsTransient, ex.Message);
            throw;
        }
        finally
        {
            BridgeDiagnostics.ForwardDuration.Record(_time.GetElapsedTime(started).TotalSeconds, new KeyValuePair<string, object?>(BridgeDiagnostics.Tags.Route, inbound.Route));
        }
    }

    /// <summary>Route, body limit, schedule and the task of one event, before any call (the batch forwarder's too).</summary>
    /// <exception cref="ForwardingException">The event can't be forwarded as it is.</exception>
    internal (Route Route, Bridge.CloudTasks.V2Beta3.Task Task, DateTimeOffset? ScheduleTime) Prepare(InboundEvent inbound, Activity? activity)
    {
        if (!_routes.TryFind(inbound.Route, out var route))
        {
            throw new ForwardingException(ForwardingFailureReason.UnknownRoute, $"No route named '{inbound.Route}'; configured: {string.Join(", ", _routes.All.Select(r => r.Name))}.");
        }

        if (inbound.Body.Length > _options.MaxBodyBytes)
        {
            throw new ForwardingException(ForwardingFailureReason.PayloadTooLarge, $"The body is {inbound.Body.Length} bytes; the limit is {_options.MaxBodyBytes} bytes.");
        }

        var now = _time.GetUtcNow();
        var scheduleTime = ScheduleRules.Resolve(inbound.Schedule, route.Options, now);
        return (route, BuildTask(route, inbound, scheduleTime, scheduleTime ?? now, activity), scheduleTime);
    }

    private async Task<ForwardResult> ForwardCoreAsync(InboundEvent inbound, Activity? activity, CancellationToken cancellationToken)
    {
        var (route, task, scheduleTime) = Prepare(inbound, activity);
        var queue = route.Queue.ToString(); // built once: the span's destination and the request's parent
        activity?.SetTag(BridgeDiagnostics.Tags.MessagingDestination, queue);
        if (task.Name.Length > 0)
        {
            activity?.SetTag(BridgeDiagnostics.Tags.TaskName, task.Name);
        }

        try
        {
            var created = await _client.CreateTaskAsync(
                new CreateTaskRequest { Parent = queue, Task = task },
                task.Name.Length > 0 ? _namedTaskCall : null,
                cancellationToken).ConfigureAwait(false);
            return new ForwardResult(ForwardOutcome.Created, created.Name, scheduleTime, route.Name);
        }
        catch (CloudTasksException ex) when (ex.Reason == CloudTasksFailureReason.AlreadyExists)
        {
            return new ForwardResult(ForwardOutcome.Deduplicated, task.Name, scheduleTime, route.Name);
        }
        catch (CloudTasksException ex)
        {
            throw Classify(ex, route);
        }
    }

    private static Bridge.CloudTasks.V2Beta3.Task BuildTask(Route route, InboundEvent inbound, DateTimeOffset? scheduleTime, DateTimeOffset due, Activity? activity)
    {
        var request = new HttpRequest
        {
            Url = route.Options.TargetUrl,
            HttpMethod = ParseMethod(route.Options.HttpMethod),
            Body = ByteString.CopyFrom(inbound.Body.Span),
        };
        foreach (var (name, value) in route.Options.Headers)
        {
            request.Headers[name] = value;
        }

        foreach (var (name, value) in inbound.Headers)
        {
            request.Headers[name] = value;
        }

        if (!string.IsNullOrEmpty(inbound.ContentType))
        {
            request.Headers["Content-Type"] = inbound.ContentType;
        }

        request.Headers[RouteHeader] = route.Name;
        request.Headers[TaskInstanceHeader] = TaskInstanceStamp.Next();
        request.Headers[TaskDueHeader] = due.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        if (!string.IsNullOrEmpty(inbound.CorrelationId))
        {
            request.Headers[CorrelationHeader] = inbound.CorrelationId;
        }

        if (inbound.Identity is { } identity)
        {
            request.Headers[IdentityHeader] = identity.Kind;
        }

        // Trace context always: the forward span's, so the callback continues this trace.
        if ((activity ?? Activity.Current) is { } current)
        {
            request.Headers["traceparent"] = current.Id!;
            if (!string.IsNullOrEmpty(current.TraceStateString))
            {
                request.Headers["tracestate"] = current.TraceStateString;
            }
        }
        else
        {
            // Nobody traces this process; still give the task a trace context so the callback can join it.
            request.Headers["traceparent"] = !string.IsNullOrEmpty(inbound.TraceParent)
                ? inbound.TraceParent
                : $"00-{ActivityTraceId.CreateRandom()}-{ActivitySpanId.CreateRandom()}-00";
        }

        if (!string.IsNullOrEmpty(route.Options.ServiceAccountEmail))
        {
            request.OidcToken = new OidcToken
            {
                ServiceAccountEmail = route.Options.ServiceAccountEmail,
                Audience = string.IsNullOrEmpty(route.Options.Audience) ? route.Options.TargetUrl : route.Options.Audience,
            };
        }

        var task = new Bridge.CloudTasks.V2Beta3.Task { HttpRequest = request };
        if (inbound.Identity is { } id)
        {
            // As TaskName formats it; a hex SHA-256 is always a valid task id, so no TaskName is built to check it.
            task.Name = string.Concat(route.Queue.ToString(), "/tasks/", TaskNaming.TaskId(route.Name, id));
        }

        if (scheduleTime is { } at)
        {
            task.ScheduleTime = Timestamp.FromDateTimeOffset(at);
        }

        if (route.Options.DispatchDeadline is { } deadline)
        {
            task.DispatchDeadline = Duration.FromTimeSpan(deadline);
        }

        return task;
    }

    internal static ForwardingException Classify(CloudTasksException ex, Route route) => ex.Reason switch
    {
        CloudTasksFailureReason.NotFound => new ForwardingException(ForwardingFailureReason.QueueNotFound, $"Queue {route.Queue} does not exist: {ex.Message}", ex),
        CloudTasksFailureReason.InvalidArgument or CloudTasksFailureReason.OutOfRange or CloudTasksFailureReason.FailedPrecondition =>
            new ForwardingException(ForwardingFailureReason.RejectedByCloudTasks, $"Cloud Tasks rejected the task: {ex.Message}{string.Concat(ex.FieldViolations.Select(v => $" [{v.Field}: {v.Description}]"))}", ex),
        CloudTasksFailureReason.PermissionDenied or CloudTasksFailureReason.Unauthenticated =>
            new ForwardingException(ForwardingFailureReason.NotAuthorized, $"Not allowed to create tasks in {route.Queue}: {ex.Message}", ex),
        _ => new ForwardingException(ForwardingFailureReason.CloudTasksUnavailable, $"Cloud Tasks is unavailable: {ex.Message}", ex, ex.RetryDelay),
    };

    private static HttpMethod ParseMethod(string method) => method.ToUpperInvariant() switch
    {
        "GET" => HttpMethod.Get,
        "PUT" => HttpMethod.Put,
        "PATCH" => HttpMethod.Patch,
        "DELETE" => HttpMethod.Delete,
        "HEAD" => HttpMethod.Head,
        "OPTIONS" => HttpMethod.Options,
        _ => HttpMethod.Post,
    };

    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Forwarded an event on route {Route} as {TaskName} ({Outcome})")]
    private partial void LogForwarded(string route, string taskName, string outcome);

    [LoggerMessage(EventId = 101, Level = LogLevel.Warning, Message = "Did not forward an event on route {Route}: {Reason} (transient: {Transient}): {Description}")]
    private partial void LogRejected(string route, string reason, bool transient, string description);
}
