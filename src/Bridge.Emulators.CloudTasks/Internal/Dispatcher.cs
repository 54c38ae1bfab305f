using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using Bridge.CloudTasks.V2Beta3;
using HttpMethod = Bridge.CloudTasks.V2Beta3.HttpMethod;
using Task = System.Threading.Tasks.Task;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// Sends due tasks to their targets over real HTTP, with the headers and tokens the real service sends, and
/// reports each outcome to the state (which deletes, retries or gives up).
/// </summary>
internal sealed partial class Dispatcher : BackgroundService
{
    private readonly EmulatorState _state;
    private readonly OidcIssuer _issuer;
    private readonly EmulatorOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<Dispatcher> _logger;
    private readonly HttpMessageInvoker _http; // not HttpClient: no linked CancellationTokenSource and no extra state machine per request
    private static readonly TimeSpan MaxClockDrift = TimeSpan.FromMilliseconds(1);
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>
    /// The loop's one wake-up: released by the state on a change that may make work and by the timer when the
    /// next thing falls due; at most one release is pending, so a burst of completions costs one pass.
    /// </summary>
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly ITimer _timer; // rescheduled each pass, never made anew
    private int _running; // attempts under way, so shutdown can let them finish
    private volatile bool _stopRequested; // from the start of shutdown, a completion hands out no new attempt
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Waits between writes of an outcome whose commit failed (the first rewrite goes at once).</summary>
    private static readonly TimeSpan FirstRewriteDelay = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxRewriteDelay = TimeSpan.FromSeconds(30);

    /// <summary>Deadline sources kept for reuse (about the attempts under way at once).</summary>
    private readonly System.Collections.Concurrent.ConcurrentQueue<CancellationTokenSource> _deadlines = new();
    private const int MaxPooledDeadlines = 1024;

    /// <summary>Parsed target URLs by the URL as given; distinct URLs are unbounded, so past this the cache starts over.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, TargetUri> _targets = new(StringComparer.Ordinal);
    private const int MaxCachedTargets = 1024;

    public Dispatcher(EmulatorState state, OidcIssuer issuer, EmulatorOptions options, TimeProvider time, ILogger<Dispatcher> logger)
    {
        _state = state;
        _issuer = issuer;
        _options = options;
        _time = time;
        _logger = logger;
        _http = new HttpMessageInvoker(new SocketsHttpHandler
        {
            // Cloud Tasks treats a redirect as the attempt's response (an execution that failed), not something to follow.
            AllowAutoRedirect = false,
            UseCookies = false,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),

            // Targets get the task's own headers, as from the real service; no traceparent of the emulator's.
            ActivityHeadersPropagator = null,
        }, disposeHandler: true); // no timeout but each attempt's deadline; the response is read up to its headers only
        _timer = time.CreateTimer(static self => ((Dispatcher)self!).Wake(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        state.OnDispatchWanted(Wake);
    }

    private void Wake()
    {
        if (_wake.CurrentCount == 0)
        {
            try
            {
                _wake.Release();
            }
            catch (SemaphoreFullException)
            {
                // Another wake got there first: one pending release is all the loop needs.
            }
        }
    }

    /// <summary>Dispatches one attempt now (RunTask).</summary>
    public void Start(DispatchWork work)
    {
        Interlocked.Increment(ref _running);
        _ = RunAsync(work);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _stopRequested = true; // before the loop stops: completions stop handing out too (the loop's own rule)
        await base.StopAsync(cancellationToken);
        await _stopping.CancelAsync();
        if (Volatile.Read(ref _running) == 0)
        {
            _drained.TrySetResult();
        }

        // Let attempts under way finish (their outcome is recorded), within the host's shutdown time.
        await _drained.Task.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await _timer.DisposeAsync();
        _http.Dispose();
        _stopping.Dispose();
        while (_deadlines.TryDequeue(out var timeout))
        {
            timeout.Dispose();
        }
    }

    public override void Dispose()
    {
        // Not the semaphore: the state may still call Wake, and an undisposed SemaphoreSlim holds nothing.
        _timer.Dispose();
        base.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            DateTimeOffset? nextWake;
            try
            {
                foreach (var work in _state.TakeDue(out nextWake))
                {
                    Start(work);
                }
            }
            catch (Exception ex)
            {
                LogLoopFailed(ex);
                nextWake = _time.GetUtcNow() + TimeSpan.FromSeconds(1);
            }

            var planned = _time.GetUtcNow();
            var wait = nextWake is { } at ? at - planned : Timeout.InfiniteTimeSpan;
            if (wait == Timeout.InfiniteTimeSpan || wait > TimeSpan.Zero)
            {
                _timer.Change(wait, Timeout.InfiniteTimeSpan);

                // The timer counts from when it was armed: if the clock moved after it was read (a test's
                // FakeTimeProvider.Advance), the timer would fire late, so plan again instead. A change made
                // since TakeDue left a release pending, so the wait returns at once: no wake-up is lost.
                if (_time.GetUtcNow() - planned <= MaxClockDrift)
                {
                    await _wake.WaitAsync(stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }
            }
        }
    }

    /// <summary>
    /// One attempt, in one state machine (it was three nested ones; the send's is pooled). The request leaves at once,
    /// without any write of its start: Cloud Tasks delivers at least once, so a crash may cause a redelivery but must
    /// never lose a task or an outcome, and storage must never go backward. With a durable store (one writer, commits
    /// in the order the writes were queued under the state's lock):
    /// <list type="number">
    /// <item>TakeDue changes memory (dispatch_count + 1, the attempt) and notes the start as unwritten;</item>
    /// <item>the request leaves;</item>
    /// <item>only if the attempt is still under way after EmulatorState.StartWriteDelay (about a second: most attempts
    /// end within milliseconds and skip this), the dispatch loop queues the started row as memory has it, and it
    /// commits;</item>
    /// <item>the response comes and CompleteAttempt queues the outcome (the row with the response and the retry's
    /// schedule, or the deletion and its tombstone), behind the start when that was written;</item>
    /// <item>the outcome commits.</item>
    /// </list>
    /// SIGKILL before 3 has committed (or before 5, when 3 never came): storage has the task as before the attempt;
    /// after a restart it is dispatched again with the same dispatch count (if the request had left, the target gets
    /// it twice). Between 3 and 5: storage has the start; after a restart the task is dispatched again. After 5: the
    /// outcome stands. In no case is a task or an acknowledged outcome lost, and the dispatch count on disk never goes
    /// down: every write is of the row as memory has it, at or past the start. A failed commit of the start (or of the
    /// outcome) leaves memory ahead of storage: the request was sent anyway, and the task is written again as memory
    /// has it until a commit holds (<see cref="RewriteUntilDurableAsync"/>).
    /// </summary>
    private async Task RunAsync(DispatchWork work)
    {
        var finished = true; // false once the attempt is handed to its commit's continuation (FinishAfterCommit)
        try
        {
            // On the thread pool: building and sending the request must not hold up the loop handing out the next
            // ones. (Task.Yield queues this method's own state machine: no closure and no Task.Run wrapper per attempt.)
            await Task.Yield();
            DispatchResult result;
            try
            {
                result = await SendAsync(work).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                LogDispatchFailed(work.Task.Name, ex);
                result = new DispatchResult(null, _time.GetUtcNow(), null);
            }

            Task durable;
            try
            {
                durable = _state.CompleteAttempt(work, result, takeNext: !_stopRequested, out var next);
                if (next is not null)
                {
                    foreach (var started in next)
                    {
                        Start(started); // what the freed slot lets the queue send, without a pass of the loop
                    }
                }
            }
            catch (Exception ex)
            {
                // The state put the task back for a later attempt; this is worth an error in the log.
                LogCompleteFailed(work.Task.Name, ex);
                return;
            }

            if (!durable.IsCompleted)
            {
                // A durable store: the attempt is finished by one continuation per commit for every outcome in it
                // (AfterCommit), not by a thread-pool hop of this state machine per attempt; it is counted out there.
                FinishAfterCommit(durable, work);
                finished = false;
                return;
            }

            try
            {
                await durable.ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                LogOutcomeNotDurable(work.Task.Name, ex);
                await RewriteUntilDurableAsync(work).ConfigureAwait(false);
            }
        }
        finally
        {
            if (finished)
            {
                await FinishAsync(work).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The attempts waiting for the commit their outcomes are gathered into now (under <see cref="_afterCommitGate"/>).</summary>
    private readonly Lock _afterCommitGate = new();
    private CommitWaiters? _gathering;

    /// <summary>
    /// Finishes <paramref name="work"/> once <paramref name="durable"/> (the commit of its outcome) is done: the
    /// attempts whose outcomes share a commit (commits are grouped: tens of outcomes each under load) are finished
    /// together by one continuation, instead of each attempt's state machine resuming on the thread pool.
    /// </summary>
    private void FinishAfterCommit(Task durable, DispatchWork work)
    {
        CommitWaiters waiters;
        lock (_afterCommitGate)
        {
            if (_gathering is { } gathering && ReferenceEquals(gathering.Commit, durable))
            {
                gathering.Works.Add(work);
                return;
            }

            // Another commit (or none) was gathering: it keeps its own list and continuation; this one starts its own.
            waiters = new CommitWaiters(this, durable);
            waiters.Works.Add(work);
            _gathering = waiters;
        }

        // Outside the lock: a commit done meanwhile runs the continuation here and now.
        durable.ContinueWith(static (_, state) => ((CommitWaiters)state!).Owner.AfterCommit((CommitWaiters)state), waiters, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private void AfterCommit(CommitWaiters waiters)
    {
        lock (_afterCommitGate)
        {
            if (ReferenceEquals(_gathering, waiters))
            {
                _gathering = null; // nothing more joins this list: an outcome queued from now waits on its own continuation
            }
        }

        foreach (var work in waiters.Works)
        {
            if (waiters.Commit.IsCompletedSuccessfully && work.Recorded.IsCompletedSuccessfully)
            {
                CountOut(); // the common case, without a state machine
            }
            else
            {
                _ = FinishOutcomeAsync(waiters.Commit, work);
            }
        }
    }

    /// <summary>Attempts whose outcomes wait for one commit.</summary>
    private sealed class CommitWaiters(Dispatcher owner, Task commit)
    {
        public Dispatcher Owner { get; } = owner;

        public Task Commit { get; } = commit;

        public List<DispatchWork> Works { get; } = [];
    }

    /// <summary>After the outcome's commit: a failed one is written again until it holds; then the attempt is finished.</summary>
    private async Task FinishOutcomeAsync(Task commit, DispatchWork work)
    {
        try
        {
            if (commit.Exception is { } failed)
            {
                LogOutcomeNotDurable(work.Task.Name, failed.InnerException ?? failed);
                await RewriteUntilDurableAsync(work).ConfigureAwait(false);
            }
        }
        finally
        {
            await FinishAsync(work).ConfigureAwait(false);
        }
    }

    /// <summary>The end of every attempt, after its outcome is durable (or written again).</summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask FinishAsync(DispatchWork work)
    {
        // The start's commit is looked at only now: commits go in order, so once the outcome's is done the start's
        // is too (no wait and no thread hop per attempt, where a watcher of its own cost both). A failed start
        // leaves memory ahead of storage until this rewrite, as a SIGKILL before its commit would have: redelivery.
        try
        {
            if (!work.Recorded.IsCompletedSuccessfully)
            {
                await RewriteIfStartFailedAsync(work).ConfigureAwait(false); // it logs and writes again
            }
        }
        finally
        {
            CountOut(); // whatever happened above
        }
    }

    /// <summary>An attempt is over: a stop waits for this count.</summary>
    private void CountOut()
    {
        if (Interlocked.Decrement(ref _running) == 0 && _stopping.IsCancellationRequested)
        {
            _drained.TrySetResult();
        }
    }

    private async Task RewriteIfStartFailedAsync(DispatchWork work)
    {
        try
        {
            await work.Recorded.ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            LogStartNotDurable(work.Task.Name, ex);
            await RewriteUntilDurableAsync(work).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The commit of the attempt's start or outcome failed: memory has it, storage not. Writes the task as memory has
    /// it until a commit holds (at once, then backing off), so storage agrees with memory again. The first write is
    /// made even when shutdown has begun (a failure seen during a graceful stop is not left behind); only the waits
    /// between further tries end at shutdown, when storage keeps what it had (the task as before the attempt, or its
    /// start) and the task is tried again after a restart.
    /// </summary>
    private async Task RewriteUntilDurableAsync(DispatchWork work)
    {
        var delay = TimeSpan.Zero;
        while (true)
        {
            try
            {
                if (delay > TimeSpan.Zero)
                {
                    await Task.Delay(delay, _time, _stopping.Token).ConfigureAwait(false);
                }

                await _state.RewriteTask(work.Queue.Name, work.Task.Name).ConfigureAwait(false);
                return;
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LogRewriteFailed(work.Task.Name, ex);
                if (_stopping.IsCancellationRequested)
                {
                    return;
                }

                delay = delay == TimeSpan.Zero ? FirstRewriteDelay : TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxRewriteDelay.Ticks));
            }
        }
    }

    /// <summary>Whether shutdown has begun: from here a failed write is tried once more, not again and again.</summary>
    internal bool IsStopping => _stopping.IsCancellationRequested;

    /// <summary>Sends the attempt's request and reads the answer up to its headers (its state machine comes from a pool).</summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<DispatchResult> SendAsync(DispatchWork work)
    {
        using var request = BuildRequest(work, out var target);
        using var activity = EmulatorDiagnostics.ActivitySource.HasListeners() ? StartSpan(work, request.Method) : null; // no trace context parsed for no listener
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(EmulatorDiagnostics.Tags.HttpMethod, request.Method.Method);
            activity.SetTag(EmulatorDiagnostics.Tags.UrlFull, target.WithoutQuery);
            activity.SetTag(EmulatorDiagnostics.Tags.Queue, work.Queue.Name);
            activity.SetTag(EmulatorDiagnostics.Tags.Task, work.Task.Name);
            activity.SetTag(EmulatorDiagnostics.Tags.RetryCount, work.RetryCount);
        }

        var deadline = work.Task.DispatchDeadline?.ToTimeSpan() ?? TaskRules.DefaultDispatchDeadline;
        var timeout = RentDeadline(deadline);
        try
        {
            using var response = await _http.SendAsync(request, timeout.Token).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            activity?.SetTag(EmulatorDiagnostics.Tags.HttpStatusCode, status);
            if (status is < 200 or >= 300)
            {
                activity?.SetStatus(ActivityStatusCode.Error);
                activity?.SetTag(EmulatorDiagnostics.Tags.ErrorType, status.ToString(CultureInfo.InvariantCulture));
            }

            return new DispatchResult(status, _time.GetUtcNow(), RetryAfter(response.Headers.RetryAfter));
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            activity?.SetStatus(ActivityStatusCode.Error, "dispatch deadline exceeded");
            activity?.SetTag(EmulatorDiagnostics.Tags.ErrorType, "timeout");
            return new DispatchResult(null, _time.GetUtcNow(), null);
        }
        catch (HttpRequestException ex)
        {
            // No response at all (refused, reset): the real service records this like a 503.
            activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
            activity?.SetTag(EmulatorDiagnostics.Tags.ErrorType, ex.HttpRequestError.ToString());
            return new DispatchResult(503, _time.GetUtcNow(), null);
        }
        finally
        {
            ReturnDeadline(timeout);
        }
    }

    /// <summary>
    /// A deadline's CancellationTokenSource, reused: a new one per attempt cost a source, its timer and its
    /// registration in the timer queue. A reused one keeps its timer and is only re-armed.
    /// </summary>
    private CancellationTokenSource RentDeadline(TimeSpan deadline)
    {
        if (!_deadlines.TryDequeue(out var timeout))
        {
            timeout = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _time);
        }

        timeout.CancelAfter(deadline);
        return timeout;
    }

    private void ReturnDeadline(CancellationTokenSource timeout)
    {
        // TryReset fails once the deadline fired (or its timer cannot be stopped for sure): then it is not reused.
        if (_deadlines.Count < MaxPooledDeadlines && timeout.TryReset())
        {
            _deadlines.Enqueue(timeout);
        }
        else
        {
            timeout.Dispose();
        }
    }

    /// <summary>The attempt's client span, a child of the task's own traceparent when it carries one.</summary>
    private static Activity? StartSpan(DispatchWork work, System.Net.Http.HttpMethod method)
    {
        var parent = work.Task.HttpRequest?.Headers.TryGetValue("traceparent", out var traceparent) == true
            && ActivityContext.TryParse(traceparent, work.Task.HttpRequest.Headers.GetValueOrDefault("tracestate"), out var context)
            ? context
            : default;
        return EmulatorDiagnostics.ActivitySource.StartActivity(SpanName(method), ActivityKind.Client, parent);
    }

    private static string SpanName(System.Net.Http.HttpMethod method) => method.Method switch
    {
        "POST" => "cloudtasks dispatch POST",
        "GET" => "cloudtasks dispatch GET",
        "PUT" => "cloudtasks dispatch PUT",
        "DELETE" => "cloudtasks dispatch DELETE",
        "PATCH" => "cloudtasks dispatch PATCH",
        "HEAD" => "cloudtasks dispatch HEAD",
        "OPTIONS" => "cloudtasks dispatch OPTIONS",
        var other => "cloudtasks dispatch " + other,
    };

    /// <summary>A target URL parsed once: tasks of a queue mostly share a few URLs, and a Uri is immutable.</summary>
    private TargetUri ParseTarget(string url)
    {
        if (_targets.TryGetValue(url, out var target))
        {
            return target;
        }

        var uri = new Uri(url, UriKind.Absolute);
        target = new TargetUri(uri, uri.GetLeftPart(UriPartial.Path));
        if (_targets.Count >= MaxCachedTargets)
        {
            _targets.Clear();
        }

        _targets[url] = target;
        return target;
    }

    private sealed record TargetUri(Uri Uri, string WithoutQuery);

    private HttpRequestMessage BuildRequest(DispatchWork work, out TargetUri targetUri)
    {
        var task = work.Task;
        HttpRequestMessage request;
        IEnumerable<KeyValuePair<string, string>> headers;
        bool hasHeaders; // an empty map's enumerator is still a boxed allocation: none when there is nothing to copy
        Google.Protobuf.ByteString body; // immutable: sent as it is, not copied
        TaskHeaderNames names;
        if (task.HttpRequest is { } http)
        {
            var target = work.Queue.HttpTarget;
            var method = target is { HttpMethod: not HttpMethod.Unspecified } ? target.HttpMethod : http.HttpMethod;
            var url = UriOverrides.Apply(http.Url, target?.UriOverride);
            targetUri = ParseTarget(url);
            request = new HttpRequestMessage(ToHttpMethod(method), targetUri.Uri);
            if (target is { HeaderOverrides.Count: > 0 })
            {
                var merged = new Dictionary<string, string>(http.Headers, StringComparer.OrdinalIgnoreCase);
                foreach (var header in target.HeaderOverrides)
                {
                    merged[header.Header.Key] = header.Header.Value;
                }

                headers = merged;
            }
            else
            {
                headers = http.Headers;
            }

            hasHeaders = http.Headers.Count > 0 || target is { HeaderOverrides.Count: > 0 };

            body = http.Body;
            names = TaskHeaderNames.CloudTasks;
            var (oidc, oauth) = target is { AuthorizationHeaderCase: not HttpTarget.AuthorizationHeaderOneofCase.None }
                ? (target.OidcToken, target.OauthToken)
                : (http.OidcToken, http.OauthToken);
            if (oidc is not null)
            {
                var audience = string.IsNullOrEmpty(oidc.Audience) ? url : oidc.Audience; // the URL as given, not as Uri renders it
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _issuer.GetIdToken(oidc.ServiceAccountEmail, audience));
            }
            else if (oauth is not null)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", OidcIssuer.CreateAccessToken());
            }
        }
        else
        {
            var appEngine = task.AppEngineHttpRequest;
            var url = new Uri(new Uri(_options.AppEngineHost), appEngine.RelativeUri);
            targetUri = new TargetUri(url, url.GetLeftPart(UriPartial.Path));
            request = new HttpRequestMessage(ToHttpMethod(appEngine.HttpMethod), url);
            headers = appEngine.Headers;
            hasHeaders = appEngine.Headers.Count > 0;
            body = appEngine.Body;
            names = TaskHeaderNames.AppEngine;
        }

        if (body.Length > 0)
        {
            request.Content = new ReadOnlyMemoryContent(body.Memory);
        }

        if (hasHeaders)
        {
            CopyTaskHeaders(request, headers);
        }

        request.Headers.TryAddWithoutValidation("User-Agent", "Google-Cloud-Tasks");
        var queueId = work.Queue.Name[(work.Queue.Name.LastIndexOf('/') + 1)..];
        var taskId = task.Name[(task.Name.LastIndexOf('/') + 1)..];
        request.Headers.TryAddWithoutValidation(names.QueueName, queueId);
        request.Headers.TryAddWithoutValidation(names.TaskName, taskId);
        request.Headers.TryAddWithoutValidation(names.TaskRetryCount, work.RetryCount.ToString(CultureInfo.InvariantCulture));
        request.Headers.TryAddWithoutValidation(names.TaskExecutionCount, work.ExecutionCount.ToString(CultureInfo.InvariantCulture));
        request.Headers.TryAddWithoutValidation(names.TaskEta, FormatEta(work.Eta));
        if (work.RetryCount > 0)
        {
            request.Headers.TryAddWithoutValidation(names.TaskPreviousResponse, work.PreviousResponse.ToString(CultureInfo.InvariantCulture));
            request.Headers.TryAddWithoutValidation(names.TaskRetryReason, string.Empty);
        }

        return request;
    }

    /// <summary>The task's own headers (after the queue's overrides), but for those the service sets itself.</summary>
    private static void CopyTaskHeaders(HttpRequestMessage request, IEnumerable<KeyValuePair<string, string>> headers)
    {
        foreach (var (name, value) in headers)
        {
            if (TaskRules.IsReservedHeader(name) || (request.Headers.Authorization is not null && name.Equals("Authorization", StringComparison.OrdinalIgnoreCase)))
            {
                continue; // a minted token replaces the task's own Authorization
            }

            if (!request.Headers.TryAddWithoutValidation(name, value))
            {
                request.Content ??= new ByteArrayContent([]);
                request.Content.Headers.TryAddWithoutValidation(name, value);
            }
        }
    }

    /// <summary>The task headers' names, made once (they were concatenated from the prefix on every request).</summary>
    private sealed class TaskHeaderNames(string prefix)
    {
        public static readonly TaskHeaderNames CloudTasks = new("X-CloudTasks-");
        public static readonly TaskHeaderNames AppEngine = new("X-AppEngine-");

        public string QueueName { get; } = prefix + "QueueName";

        public string TaskName { get; } = prefix + "TaskName";

        public string TaskRetryCount { get; } = prefix + "TaskRetryCount";

        public string TaskExecutionCount { get; } = prefix + "TaskExecutionCount";

        public string TaskEta { get; } = prefix + "TaskETA";

        public string TaskPreviousResponse { get; } = prefix + "TaskPreviousResponse";

        public string TaskRetryReason { get; } = prefix + "TaskRetryReason";
    }

    /// <summary>Seconds since the epoch with microseconds, as the service writes X-CloudTasks-TaskETA.</summary>
    internal static string FormatEta(DateTimeOffset eta)
    {
        var micros = (eta - DateTimeOffset.UnixEpoch).Ticks / 10;
        Span<char> text = stackalloc char[48]; // formatted in place: no pooled buffer rented per request
        (micros / 1_000_000).TryFormat(text, out var length, default, CultureInfo.InvariantCulture);
        text[length++] = '.';
        (micros % 1_000_000).TryFormat(text[length..], out var fraction, "D6", CultureInfo.InvariantCulture);
        return new string(text[..(length + fraction)]);
    }

    private TimeSpan? RetryAfter(RetryConditionHeaderValue? header) => header switch
    {
        { Delta: { } delta } => delta,
        { Date: { } date } => date - _time.GetUtcNow(),
        _ => null,
    };

    private static System.Net.Http.HttpMethod ToHttpMethod(HttpMethod method) => method switch
    {
        HttpMethod.Get => System.Net.Http.HttpMethod.Get,
        HttpMethod.Head => System.Net.Http.HttpMethod.Head,
        HttpMethod.Put => System.Net.Http.HttpMethod.Put,
        HttpMethod.Delete => System.Net.Http.HttpMethod.Delete,
        HttpMethod.Patch => System.Net.Http.HttpMethod.Patch,
        HttpMethod.Options => System.Net.Http.HttpMethod.Options,
        _ => System.Net.Http.HttpMethod.Post,
    };

    [LoggerMessage(EventId = 1, Level = LogLevel.Error, Message = "The dispatch loop failed; retrying in a second")]
    private partial void LogLoopFailed(Exception exception);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Dispatching {Task} failed before a response")]
    private partial void LogDispatchFailed(string task, Exception exception);

    [LoggerMessage(EventId = 4, Level = LogLevel.Error, Message = "Committing the start of an attempt of {Task} failed; it was sent, writing the task again")]
    private partial void LogStartNotDurable(string task, Exception exception);

    [LoggerMessage(EventId = 3, Level = LogLevel.Error, Message = "Recording the outcome of an attempt of {Task} failed; it will be tried again")]
    private partial void LogCompleteFailed(string task, Exception exception);

    [LoggerMessage(EventId = 5, Level = LogLevel.Error, Message = "Committing the outcome of an attempt of {Task} failed; writing the task again")]
    private partial void LogOutcomeNotDurable(string task, Exception exception);

    [LoggerMessage(EventId = 6, Level = LogLevel.Error, Message = "Writing {Task} again after a failed commit failed too; trying again later")]
    private partial void LogRewriteFailed(string task, Exception exception);
}
