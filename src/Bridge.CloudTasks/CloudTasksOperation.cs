using Bridge.CloudTasks.LongRunning;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Bridge.CloudTasks;

/// <summary>
/// A long-running operation as last seen: its typed metadata, and once done its typed response or its error. Each
/// poll returns a new snapshot; the instance itself never changes. Await completion with
/// <see cref="PollUntilCompletedAsync"/>, or poll by hand with <see cref="PollOnceAsync"/>.
/// </summary>
/// <remarks>
/// A batch operation that is done may still have per-request failures (state PARTIALLY_SUCCEEDED): read them from
/// the metadata's <c>GetRequestFailures()</c>. When every request failed the operation also carries an error
/// (ABORTED), and the metadata still names each request's failure.
/// </remarks>
public sealed class CloudTasksOperation<TResponse, TMetadata>
    where TResponse : class, IMessage<TResponse>, new()
    where TMetadata : class, IMessage<TMetadata>, new()
{
    private readonly CloudTasksClient _client;
    private readonly PollSettings _defaultPollSettings;

    /// <param name="rpcMessage">The operation as the service returned it.</param>
    /// <param name="client">The client that polls it (its GetOperation).</param>
    /// <param name="method">The RPC that started it, e.g. <c>BatchCreateTasks</c>; named in errors.</param>
    /// <param name="defaultPollSettings">How <see cref="PollUntilCompletedAsync"/> waits when not told otherwise.</param>
    public CloudTasksOperation(Operation rpcMessage, CloudTasksClient client, string method, PollSettings? defaultPollSettings = null)
    {
        ArgumentNullException.ThrowIfNull(rpcMessage);
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrEmpty(method);
        if (string.IsNullOrEmpty(rpcMessage.Name))
        {
            throw new CloudTasksException(CloudTasksFailureReason.DataLoss, $"{method} returned an operation without a name; it can't be polled.");
        }

        RpcMessage = rpcMessage;
        Method = method;
        _client = client;
        _defaultPollSettings = defaultPollSettings ?? PollSettings.Default;
        Metadata = Unpack<TMetadata>(rpcMessage.Metadata, "metadata");
        if (rpcMessage.Done && rpcMessage.ResultCase == Operation.ResultOneofCase.Response)
        {
            Response = Unpack<TResponse>(rpcMessage.Response, "response");
        }
        else if (rpcMessage.Done && rpcMessage.ResultCase == Operation.ResultOneofCase.Error)
        {
            Exception = CloudTasksException.FromRpcStatus(rpcMessage.Error, method);
        }
    }

    /// <summary>The operation's resource name, e.g. <c>projects/p/locations/l/operations/o</c>.</summary>
    public string Name => RpcMessage.Name;

    /// <summary>The RPC that started the operation.</summary>
    public string Method { get; }

    /// <summary>The operation message of the latest poll.</summary>
    public Operation RpcMessage { get; }

    /// <summary>True once the service says the operation is done, successfully or not.</summary>
    public bool IsCompleted => RpcMessage.Done;

    /// <summary>True when the operation is done with an error rather than a response.</summary>
    public bool IsFaulted => Exception is not null;

    /// <summary>The metadata of the latest poll; null when the service sent none.</summary>
    public TMetadata? Metadata { get; }

    /// <summary>The response once done successfully; null before, or when the operation failed.</summary>
    public TResponse? Response { get; }

    /// <summary>The operation's error once done unsuccessfully; null otherwise.</summary>
    public CloudTasksException? Exception { get; }

    /// <summary>Fetches the operation once (GetOperation) and returns the new snapshot.</summary>
    public async Task<CloudTasksOperation<TResponse, TMetadata>> PollOnceAsync(CallSettings? callSettings = null, CancellationToken cancellationToken = default)
    {
        var latest = await _client.GetOperationAsync(new GetOperationRequest { Name = Name }, callSettings, cancellationToken).ConfigureAwait(false);
        return new CloudTasksOperation<TResponse, TMetadata>(latest, _client, Method, _defaultPollSettings);
    }

    /// <summary>
    /// Asks the service to cancel the operation (CancelOperation); best effort: poll to learn whether it stopped.
    /// Cloud Tasks documents only GetOperation, so a service may answer UNIMPLEMENTED.
    /// </summary>
    public Task CancelAsync(CallSettings? callSettings = null, CancellationToken cancellationToken = default) =>
        _client.CancelOperationAsync(new CancelOperationRequest { Name = Name }, callSettings, cancellationToken);

    /// <summary>
    /// Polls until the operation is done and returns that snapshot (check <see cref="IsFaulted"/> and the metadata).
    /// Each poll is one GetOperation call with <paramref name="callSettings"/> (merged with the client's
    /// GetOperation defaults); the whole wait is bounded by <paramref name="pollSettings"/>' timeout, which also cuts
    /// a poll in flight short. Past it, a <see cref="CloudTasksException"/> with DEADLINE_EXCEEDED; on
    /// <paramref name="cancellationToken"/>, an <see cref="OperationCanceledException"/>. Neither stops the operation.
    /// </summary>
    public async Task<CloudTasksOperation<TResponse, TMetadata>> PollUntilCompletedAsync(
        PollSettings? pollSettings = null,
        CallSettings? callSettings = null,
        CancellationToken cancellationToken = default)
    {
        if (IsCompleted)
        {
            return this;
        }

        var poll = pollSettings ?? _defaultPollSettings;
        var time = _client.Time;
        using var overall = new CancellationTokenSource(poll.Timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, overall.Token);
        var current = this;
        var polls = 0;
        try
        {
            while (!current.IsCompleted)
            {
                polls++;
                await Task.Delay(poll.DelayBefore(polls), time, linked.Token).ConfigureAwait(false);
                current = await current.PollOnceAsync(callSettings, linked.Token).ConfigureAwait(false);
            }

            return current;
        }
        catch (OperationCanceledException ex) when (overall.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new CloudTasksException(
                CloudTasksFailureReason.DeadlineExceeded,
                $"{Method} operation '{Name}' was not done after {poll.Timeout} ({polls} poll(s)); it may still complete: poll it again by name.",
                ex);
        }
    }

    private T? Unpack<T>(Any? any, string what)
        where T : class, IMessage<T>, new()
    {
        if (any is null)
        {
            return null;
        }

        var expected = new T().Descriptor;
        if (!any.Is(expected))
        {
            throw new CloudTasksException(
                CloudTasksFailureReason.DataLoss,
                $"{Method} operation '{RpcMessage.Name}' has {what} of type '{Any.GetTypeName(any.TypeUrl)}'; expected '{expected.FullName}'.");
        }

        try
        {
            return any.Unpack<T>();
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new CloudTasksException(CloudTasksFailureReason.DataLoss, $"{Method} operation '{RpcMessage.Name}' has {what} that does not parse as '{expected.FullName}'.", ex);
        }
    }
}
