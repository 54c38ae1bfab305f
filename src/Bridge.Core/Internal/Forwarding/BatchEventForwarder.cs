using System.Diagnostics;
using Bridge.CloudTasks;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Core.Forwarding;
using Bridge.Core.Routing;
using Bridge.Core.Telemetry;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Core.Internal;

/// <summary>
/// Batch forwarding: each event prepared exactly as <see cref="EventForwarder"/> prepares it, events grouped by queue
/// into chunks of at most <see cref="CloudTasksClient.MaxBatchCreateRequests"/> tasks and <see cref="MaxBatchBytes"/>,
/// one BatchCreateTasks per chunk (with a request_id, so the client's retries of a chunk are idempotent), and each
/// event's result read from its own index in the operation's metadata. ALREADY_EXISTS is a deduplicated success.
/// </summary>
internal sealed partial class BatchEventForwarder : IBatchEventForwarder
{
    /// <summary>Serialized tasks per call at most: well under the service's request limit.</summary>
    public const int MaxBatchBytes = 4 * 1024 * 1024;

    /// <summary>Chunks in flight at once, per call of <see cref="ForwardBatchAsync"/>.</summary>
    public const int MaxConcurrentChunks = 4;

    private readonly CloudTasksClient _client;
    private readonly EventForwarder _single;
    private readonly TimeProvider _time;
    private readonly ILogger<BatchEventForwarder> _logger;
    private readonly CallSettings _batchCall;

    public BatchEventForwarder(CloudTasksClient client, RouteTable routes, IOptions<BridgeOptions> options, TimeProvider time, ILoggerFactory loggers, IOptions<CloudTasksClientOptions>? clientOptions = null)
    {
        _client = client;
        _time = time;
        _logger = loggers.CreateLogger<BatchEventForwarder>();
        _single = new EventForwarder(client, routes, options, time, loggers.CreateLogger<EventForwarder>());
        _batchCall = new CallSettings
        {
            // As published, BatchCreateTasks has no deadline: without one a service that never answers would hold
            // the batch (and its messages' locks) for ever. The same deadline as CreateTask's.
            Timeout = clientOptions?.Value.Timeout ?? CloudTasksSettings.DefaultTimeout,
            Retry = RetrySettings.IdempotentDefault with
            {
                RetryableStatusCodes = new HashSet<StatusCode> { StatusCode.Unavailable, StatusCode.DeadlineExceeded, StatusCode.ResourceExhausted, StatusCode.Internal },
            },
        };
    }

    public async Task<IReadOnlyList<BatchForwardResult>> ForwardBatchAsync(IReadOnlyList<InboundEvent> events, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(events);
        var results = new BatchForwardResult?[events.Count];
        var prepared = new List<Prepared>(events.Count);
        for (var i = 0; i < events.Count; i++)
        {
            try
            {
                var (route, task, scheduleTime) = _single.Prepare(events[i], null);
                // A batch's span is shared by unrelated events: each task keeps its own event's trace when it has one.
                if (ActivityContext.TryParse(events[i].TraceParent, null, out _))
                {
                    task.HttpRequest.Headers["traceparent"] = events[i].TraceParent;
                }

                prepared.Add(new Prepared(i, events[i], route, task, scheduleTime));
            }
            catch (ForwardingException ex)
            {
                results[i] = Rejected(events[i], ex);
            }
        }

        var chunks = Chunk(prepared);
        await Parallel.ForEachAsync(chunks, new ParallelOptions { MaxDegreeOfParallelism = MaxConcurrentChunks, CancellationToken = cancellationToken }, async (chunk, ct) =>
        {
            foreach (var (index, result) in await ForwardChunkAsync(chunk, ct).ConfigureAwait(false))
            {
                results[index] = result;
            }
        }).ConfigureAwait(false);

        return results.Select((r, i) => r ?? throw new InvalidOperationException($"Event {i} of the batch got no result.")).ToList();
    }

    /// <summary>Per queue, in event order: a new chunk when the count or the byte budget would be passed.</summary>
    private static List<List<Prepared>> Chunk(List<Prepared> prepared)
    {
        var chunks = new List<List<Prepared>>();
        foreach (var group in prepared.GroupBy(p => p.Route.Queue.ToString(), StringComparer.Ordinal))
        {
            var current = new List<Prepared>();
            var bytes = 0;
            foreach (var item in group)
            {
                var size = item.Task.CalculateSize();
                if (current.Count > 0 && (current.Count == CloudTasksClient.MaxBatchCreateRequests || bytes + size > MaxBatchBytes))
                {
                    chunks.Add(current);
                    current = [];
                    bytes = 0;
                }

                current.Add(item);
                bytes += size;
            }

            chunks.Add(current);
        }

        return chunks;
    }

    private async Task<List<(int Index, BatchForwardResult Result)>> ForwardChunkAsync(List<Prepared> chunk, CancellationToken cancellationToken)
    {
        var queue = chunk[0].Route.Queue;
        var started = _time.GetTimestamp();
        using var activity = BridgeDiagnostics.ActivitySource.StartActivity($"forward batch {queue.QueueId}", ActivityKind.Producer);
        activity?.SetTag(BridgeDiagnostics.Tags.MessagingSystem, "gcp_cloud_tasks");
        activity?.SetTag(BridgeDiagnostics.Tags.MessagingOperation, "send");
        activity?.SetTag(BridgeDiagnostics.Tags.MessagingDestination, queue.ToString());
        activity?.SetTag(MessagingBatchCount, chunk.Count);
        var request = new BatchCreateTasksRequest { Parent = queue.ToString(), RequestId = Guid.NewGuid().ToString() };
        request.Requests.AddRange(chunk.Select(p => new CreateTaskRequest { Parent = request.Parent, Task = p.Task }));
        List<(int, BatchForwardResult)> results;
        try
        {
            var operation = await _client.BatchCreateTasksAsync(request, _batchCall, cancellationToken).ConfigureAwait(false);
            if (!operation.IsCompleted)
            {
                operation = await operation.PollUntilCompletedAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            }

            results = ReadOperation(chunk, operation);
        }
        catch (CloudTasksException ex) when (ex.Reason is CloudTasksFailureReason.InvalidArgument or CloudTasksFailureReason.OutOfRange or CloudTasksFailureReason.FailedPrecondition)
        {
            // Refused as a whole (e.g. too large): which event caused it is unknown, so each goes on its own.
            LogBatchRefused(queue.ToString(), chunk.Count, ex.Message);
            results = [];
            foreach (var item in chunk)
            {
                results.Add((item.Index, await ForwardOneAsync(item, cancellationToken).ConfigureAwait(false)));
            }
        }
        catch (CloudTasksException ex)
        {
            // A cause the whole chunk shares (queue missing, service unavailable, not authorized, poll timed out).
            results = chunk.Select(p => (p.Index, Rejected(p.Event, EventForwarder.Classify(ex, p.Route)))).ToList();
        }
        finally
        {
            BridgeDiagnostics.ForwardDuration.Record(_time.GetElapsedTime(started).TotalSeconds, new KeyValuePair<string, object?>(BridgeDiagnostics.Tags.Route, chunk[0].Route.Name));
        }

        var failed = results.Count(r => !r.Item2.Succeeded);
        activity?.SetTag(BridgeDiagnostics.Tags.Outcome, failed == 0 ? "created" : failed == chunk.Count ? "rejected" : "partial");
        LogBatchForwarded(queue.ToString(), chunk.Count, chunk.Count - failed, failed);
        return results;
    }

    /// <summary>Each request's own status: absent = created, ALREADY_EXISTS = deduplicated, else its failure.</summary>
    private List<(int, BatchForwardResult)> ReadOperation(List<Prepared> chunk, CloudTasksOperation<BatchCreateTasksResponse, BatchCreateTasksMetadata> operation)
    {
        var failures = operation.Metadata?.FailedRequests;
        if (failures is null || !AccountsForEveryRequest(operation, failures, chunk.Count))
        {
            // Done without per-request results, or with results that don't add up: nothing says which tasks exist, so
            // no event may be completed on it. Each is transient: a redelivery finds a named task as ALREADY_EXISTS.
            var error = operation.Exception ?? new CloudTasksException(CloudTasksFailureReason.Unknown, $"BatchCreateTasks operation '{operation.Name}' finished without per-request results.");
            return chunk.Select(p => (p.Index, Rejected(p.Event, new ForwardingException(ForwardingFailureReason.CloudTasksUnavailable, $"Cloud Tasks did not finish the batch: {error.Message}", error)))).ToList();
        }

        // The response lists the created tasks in request order; it names the tasks Cloud Tasks named.
        var created = operation.Response?.Tasks ?? [];
        var next = 0;
        var results = new List<(int, BatchForwardResult)>(chunk.Count);
        for (var i = 0; i < chunk.Count; i++)
        {
            var item = chunk[i];
            if (failures.TryGetValue(i, out var status))
            {
                var failure = CloudTasksException.FromRpcStatus(status, "BatchCreateTasks", i);
                results.Add((item.Index, failure.Reason == CloudTasksFailureReason.AlreadyExists
                    ? Forwarded(item, ForwardOutcome.Deduplicated, item.Task.Name)
                    : Rejected(item.Event, EventForwarder.Classify(failure, item.Route))));
                continue;
            }

            var name = item.Task.Name.Length > 0 ? item.Task.Name : next < created.Count ? created[next].Name : string.Empty;
            next++;
            results.Add((item.Index, Forwarded(item, ForwardOutcome.Created, name)));
        }

        return results;
    }

    /// <summary>
    /// True when the operation says what became of each request: every failure at an index of the chunk, and the
    /// others created (listed in the response), or, failed as a whole, a failure at every index.
    /// </summary>
    private static bool AccountsForEveryRequest(CloudTasksOperation<BatchCreateTasksResponse, BatchCreateTasksMetadata> operation, IDictionary<int, Google.Rpc.Status> failures, int count)
    {
        if (failures.Keys.Any(i => i < 0 || i >= count))
        {
            return false;
        }

        var created = operation.Response?.Tasks.Count ?? 0;
        return operation.IsFaulted ? failures.Count == count : created == count - failures.Count;
    }

    /// <summary>One event alone with CreateTask, when its batch was refused as a whole.</summary>
    private async Task<BatchForwardResult> ForwardOneAsync(Prepared item, CancellationToken cancellationToken)
    {
        try
        {
            var created = await _client.CreateTaskAsync(new CreateTaskRequest { Parent = item.Route.Queue.ToString(), Task = item.Task }, item.Task.Name.Length > 0 ? _batchCall : null, cancellationToken).ConfigureAwait(false);
            return Forwarded(item, ForwardOutcome.Created, created.Name);
        }
        catch (CloudTasksException ex) when (ex.Reason == CloudTasksFailureReason.AlreadyExists)
        {
            return Forwarded(item, ForwardOutcome.Deduplicated, item.Task.Name);
        }
        catch (CloudTasksException ex)
        {
            return Rejected(item.Event, EventForwarder.Classify(ex, item.Route));
        }
    }

    private static BatchForwardResult Forwarded(Prepared item, ForwardOutcome outcome, string taskName)
    {
        BridgeDiagnostics.Forwarded.Add(1, new(BridgeDiagnostics.Tags.Route, item.Route.Name), new(BridgeDiagnostics.Tags.Outcome, outcome == ForwardOutcome.Created ? "created" : "deduplicated"));
        return BatchForwardResult.Success(new ForwardResult(outcome, taskName, item.ScheduleTime, item.Route.Name));
    }

    private BatchForwardResult Rejected(InboundEvent inbound, ForwardingException failure)
    {
        BridgeDiagnostics.Rejected.Add(1, new(BridgeDiagnostics.Tags.Route, inbound.Route), new(BridgeDiagnostics.Tags.Reason, failure.ReasonCode));
        LogRejected(inbound.Route, failure.ReasonCode, failure.IsTransient, failure.Message);
        return BatchForwardResult.Failed(failure);
    }

    private const string MessagingBatchCount = "messaging.batch.message_count";

    private sealed record Prepared(int Index, InboundEvent Event, Route Route, TaskMessage Task, DateTimeOffset? ScheduleTime);

    [LoggerMessage(EventId = 110, Level = LogLevel.Information, Message = "Forwarded a batch of {Count} events to {Queue}: {Succeeded} in Cloud Tasks, {Failed} not")]
    private partial void LogBatchForwarded(string queue, int count, int succeeded, int failed);

    [LoggerMessage(EventId = 111, Level = LogLevel.Warning, Message = "Cloud Tasks refused a batch of {Count} events to {Queue} as a whole ({Description}); forwarding them one by one")]
    private partial void LogBatchRefused(string queue, int count, string description);

    [LoggerMessage(EventId = 112, Level = LogLevel.Warning, Message = "Did not forward an event of a batch on route {Route}: {Reason} (transient: {Transient}): {Description}")]
    private partial void LogRejected(string route, string reason, bool transient, string description);
}
